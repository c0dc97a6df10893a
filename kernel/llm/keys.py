"""Worker-side keys of requests and their checkpoints. Owner: LLMService (kernel main thread)."""

from __future__ import annotations

import itertools
import os


class WorkerKeys:
    """The worker-side key of each live request: `<incarnation>.<n>`, never reused (a random
    incarnation per kernel start, a counter within it), and new for every attempt, so a late
    free or a dead worker's leftovers can never touch a later request's state or snapshot."""

    def __init__(self) -> None:
        self.incarnation = os.urandom(6).hex()
        self._numbers = itertools.count()
        self._keys: dict[str, str] = {}
        self._rids: dict[str, str] = {}
        self._firsts: dict[str, str] = {}  # rid -> its first key: names its checkpoints

    def assign(self, rid: str) -> str:
        """A fresh key for `rid` (its first, or the next attempt's)."""
        self._rids.pop(self._keys.get(rid, ""), None)
        key = f"{self.incarnation}.{next(self._numbers)}"
        self._keys[rid], self._rids[key] = key, rid
        self._firsts.setdefault(rid, key)
        return key

    def adopt(self, rid: str, first_key: str) -> str:
        """A fresh key for `rid` recovered from an earlier kernel's journal, whose checkpoints
        keep the names they were written under (`first_key`, of that kernel's incarnation)."""
        self._firsts[rid] = first_key
        return self.assign(rid)

    def first(self, rid: str) -> str:
        """The key that names `rid`'s checkpoints."""
        return self._firsts[rid]

    def checkpoint(self, rid: str, number: int) -> str:
        """The LMDB key of `rid`'s checkpoint `number` (the same across its attempts)."""
        return checkpoint_key(self._firsts[rid], number)

    def key(self, rid: str) -> str:
        return self._keys[rid]

    def rid(self, key: object) -> str | None:
        """The live request a worker-side key names, or None (stale or unknown)."""
        return self._rids.get(key) if isinstance(key, str) else None

    def release(self, rid: str) -> str:
        key = self._keys.pop(rid)
        del self._rids[key]
        self._firsts.pop(rid, None)
        return key


def checkpoint_key(first_key: str, number: int) -> str:
    return f"{first_key}.c{number}"
