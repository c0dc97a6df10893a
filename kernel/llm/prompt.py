"""Prompts in the kernel: text, token ids or chat messages -> token ids, and the context window.

Uses the `tokenizers` library (no torch) on the model dir's tokenizer.json, so the kernel knows
exact token counts before scheduling. Pure apart from reading the tokenizer file once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syscalls.errors import ErrorCode, SyscallError

SUMMARY_INSTRUCTION = "Summarize the conversation so far in a few sentences:\n"


@dataclass(slots=True)
class Window:
    """The model's context window as the kernel sees it."""

    max_context: int
    vocab_size: int


class PromptCodec:
    def __init__(self, model_dir: str, window: Window) -> None:
        from tokenizers import Tokenizer

        path = Path(model_dir) / "tokenizer.json"
        if not path.exists():
            raise RuntimeError(f"model dir {model_dir} has no tokenizer.json (a fast tokenizer is required)")
        self.tok = Tokenizer.from_file(str(path))
        self.window = window
        self.chat_template = _load_chat_template(Path(model_dir))

    def encode_text(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=True)

    def encode(self, prompt: Any) -> list[int]:
        """Token ids of a prompt given as text, ids, or chat messages; INVALID_ARGUMENT otherwise."""
        if isinstance(prompt, str):
            return self.encode_text(prompt)
        if all(isinstance(x, int) and not isinstance(x, bool) for x in prompt):
            bad = [x for x in prompt if not 0 <= x < self.window.vocab_size]
            if bad:
                raise SyscallError(ErrorCode.INVALID_ARGUMENT, f"field 'prompt': token id {bad[0]} outside vocab 0..{self.window.vocab_size - 1}")
            return list(prompt)
        return self.encode_text(self.render_chat(check_messages(prompt)))

    def render_chat(self, messages: list[dict]) -> str:
        if self.chat_template is not None:
            try:
                import jinja2

                return jinja2.Template(self.chat_template).render(messages=messages, add_generation_prompt=True)
            except Exception:  # a template we cannot render: fall back to the plain format
                pass
        return "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in messages) + "<|assistant|>\n"

    def fits(self, num_prompt: int, max_new_tokens: int) -> bool:
        return num_prompt + max_new_tokens <= self.window.max_context

    def too_long(self, num_prompt: int, max_new_tokens: int) -> SyscallError:
        return SyscallError(
            ErrorCode.CONTEXT_TOO_LONG,
            f"prompt of {num_prompt} tokens + max_new_tokens {max_new_tokens} exceeds the model's window of "
            f"{self.window.max_context}; shorten it or pass context_policy 'truncate' or 'summarize'",
        )

    def truncate(self, prompt: Any, max_new_tokens: int) -> list[int]:
        """Drop the oldest messages (chat, keeping a leading system message) or oldest tokens."""
        limit = self.window.max_context - max_new_tokens
        if limit <= 0:
            raise self.too_long(0, max_new_tokens)
        if isinstance(prompt, list) and prompt and isinstance(prompt[0], dict):
            messages = check_messages(prompt)
            head = messages[:1] if messages[0]["role"] == "system" else []
            body = messages[len(head):]
            while len(body) > 1 and len(self.encode(head + body)) > limit:
                body = body[1:]
            ids = self.encode(head + body)
        else:
            ids = self.encode(prompt)
        return ids[-limit:]


def check_messages(prompt: list) -> list[dict]:
    for i, m in enumerate(prompt):
        if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
            raise SyscallError(ErrorCode.INVALID_ARGUMENT,
                               f"field 'prompt[{i}]': expected a token id or a message {{role: str, content: str}}")
    return prompt


def _load_chat_template(model_dir: Path) -> str | None:
    cfg = model_dir / "tokenizer_config.json"
    try:
        template = json.loads(cfg.read_text()).get("chat_template")
    except (OSError, ValueError):
        return None
    return template if isinstance(template, str) else None


def split_for_summary(ids: list[int], max_context: int, max_new_tokens: int) -> tuple[list[int], list[int], int]:
    """Split an over-long prompt into (oldest part to condense, recent part kept, summary tokens).

    The final prompt is summary + recent, and must fit with max_new_tokens: the recent part
    keeps half the room, the summary gets a quarter; the condensing request itself must fit too.
    """
    room = max_context - max_new_tokens
    if room < 8:
        raise SyscallError(ErrorCode.CONTEXT_TOO_LONG, f"max_new_tokens {max_new_tokens} leaves no room in a window of {max_context}")
    num_recent = room // 2
    num_summary = max(1, room // 4)
    old, recent = ids[: len(ids) - num_recent], ids[len(ids) - num_recent:]
    return old, recent, num_summary
