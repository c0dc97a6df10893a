"""What a tool is: a name, a doc, an argument schema (syscalls.schema.Field) and a function.

Tool functions run only inside tool runner processes, never in the kernel. They get their
validated args and a ToolEnv; they return a msgpack-able value, raise SyscallError (its code is
forwarded, e.g. INVALID_ARGUMENT naming the field) or any other exception (-> TOOL_ERROR).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syscalls.errors import ErrorCode, SyscallError
from syscalls.schema import Field, check_field


@dataclass(frozen=True, slots=True)
class ToolEnv:
    caller: str  # the calling agent's name, set by the kernel (not by the agent)
    storage_path: Path  # STATE/storage.lmdb, for read-only tools


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    doc: str
    args: tuple[Field, ...]
    fn: Callable[[dict, ToolEnv], Any]

    def describe(self) -> dict:
        return {
            "name": self.name,
            "doc": self.doc,
            "args": [
                {"name": f.name, "type": f.type, "required": f.required, "doc": f.doc}
                for f in self.args
            ],
        }

    def validate(self, args: dict | None) -> dict:
        """Full args (defaults filled) or INVALID_ARGUMENT naming the field."""
        args = args or {}
        known = {f.name for f in self.args}
        for key in args:
            if key not in known:
                raise SyscallError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"field '{key}': unknown argument of tool '{self.name}'",
                )
        out = {}
        for f in self.args:
            if f.name in args:
                out[f.name] = check_field(f, args[f.name])
            elif f.required:
                raise SyscallError(ErrorCode.INVALID_ARGUMENT, f"field '{f.name}': required")
            else:
                out[f.name] = f.default
        return out
