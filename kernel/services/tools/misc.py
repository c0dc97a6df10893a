"""storage_search (read-only search of the caller's storage) and the test tools sleep, crash, echo."""

from __future__ import annotations

import os
import time

from kernel.services.tools.spec import ToolEnv, ToolSpec
from syscalls.schema import Field

_readonly_store = None  # this runner process's read-only LmdbStore, opened on first use


def _storage_search(args: dict, env: ToolEnv) -> dict:
    """Runs in the runner: its own read-only LMDB Environment on STATE/storage.lmdb."""
    global _readonly_store
    from kernel.services.lmdb_store import LmdbStore
    from kernel.services.storage import DB_NAMES, search_live

    if _readonly_store is None:
        _readonly_store = LmdbStore(env.storage_path, DB_NAMES, readonly=True)
    return {"hits": search_live(_readonly_store, env.caller, args["query"], args["limit"])}


def _sleep(args: dict, env: ToolEnv) -> dict:
    time.sleep(args["seconds"])
    return {"slept_s": args["seconds"]}


def _crash(args: dict, env: ToolEnv) -> None:
    if args["mode"] == "exit":
        os._exit(3)
    raise RuntimeError(args["message"])


def _echo(args: dict, env: ToolEnv) -> str:
    return args["text"] * args["times"]


STORAGE_SEARCH = ToolSpec(
    "storage_search",
    "Keyword search over the caller's own storage (latest live values).",
    (
        Field("query", "str", "keywords", required=True, min=1, max=1024),
        Field("limit", "int", "at most this many hits", default=10, min=1, max=1000),
    ),
    _storage_search,
)
SLEEP = ToolSpec(
    "sleep",
    "Test tool: sleeps for `seconds` (for timeout tests).",
    (Field("seconds", "float", "how long", required=True, min=0.0, max=600.0),),
    _sleep,
)
CRASH = ToolSpec(
    "crash",
    "Test tool: raises an exception (mode=raise) or kills its runner (mode=exit).",
    (
        Field("mode", "str", "raise or exit", default="raise", choices=("raise", "exit")),
        Field("message", "str", "exception message", default="tool crashed on purpose", max=256),
    ),
    _crash,
)
ECHO = ToolSpec(
    "echo",
    "Test tool: returns `text` repeated `times` times (for output-limit tests).",
    (
        Field("text", "str", "text", required=True, max=4096),
        Field("times", "int", "repetitions", default=1, min=0, max=100_000),
    ),
    _echo,
)
