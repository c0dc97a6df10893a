"""Keyword search shared by mem.search, storage.search and the storage_search tool (pure).

A value's text is its strings, numbers and map keys, flattened. Score = fraction of distinct
query terms that occur in the text (1.0 = all matched); ties break by key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

TOKEN_RE = re.compile(r"\w+", re.UNICODE)
MAX_DEPTH = 32
SNIPPET_CHARS = 80


def flatten_text(value: Any, depth: int = 0) -> str:
    if depth > MAX_DEPTH or value is None or isinstance(value, bytes):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        parts = (
            f"{flatten_text(k, depth + 1)}: {flatten_text(v, depth + 1)}" for k, v in value.items()
        )
        return ", ".join(parts)
    if isinstance(value, (list, tuple)):
        return ", ".join(flatten_text(v, depth + 1) for v in value)
    return str(value)


def tokenize(text: str) -> set[str]:
    return {t.lower() for t in TOKEN_RE.findall(text)}


def score(query_terms: set[str], text: str) -> float:
    if not query_terms:
        return 0.0
    return len(query_terms & tokenize(text)) / len(query_terms)


def snippet(text: str, query_terms: set[str]) -> str:
    """Up to SNIPPET_CHARS of text around the first matched term."""
    first = next(
        (m.start() for m in TOKEN_RE.finditer(text) if m.group().lower() in query_terms), 0
    )
    start = max(0, first - SNIPPET_CHARS // 4)
    return text[start : start + SNIPPET_CHARS]


def rank(
    query: str, docs: Iterable[tuple[str, Any]], limit: int, with_snippet: bool = False
) -> list[dict]:
    """Hits [{key, score[, snippet]}] for (key, value) docs, best first, at most limit."""
    terms = tokenize(query)
    hits = []
    for key, value in docs:
        text = flatten_text(value)
        s = score(terms, text)
        if s > 0:
            hit = {"key": key, "score": s}
            if with_snippet:
                hit["snippet"] = snippet(text, terms)
            hits.append(hit)
    hits.sort(key=lambda h: (-h["score"], h["key"]))
    return hits[:limit]
