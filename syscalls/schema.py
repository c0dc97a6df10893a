"""Argument schemas: how a syscall declares its fields, and the one validator.

Pure module: no I/O. Validation errors always name the offending field.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from syscalls.errors import ErrorCode, SyscallError

# wire type name -> python types accepted (bool is not an int on the wire)
WIRE_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (float, int),
    "bool": (bool,),
    "bytes": (bytes,),
    "map": (dict,),
    "list": (list, tuple),
    "any": (object,),
}


@dataclass(frozen=True, slots=True)
class Field:
    """One argument: its wire type(s), bounds and documentation."""

    name: str
    type: str  # one of WIRE_TYPES, or several joined by "|"
    doc: str
    required: bool = False
    default: Any = None
    min: float | None = None  # numbers: value bound; str/bytes/list: length bound
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    items: str | None = None  # element type for lists
    item_min: int | None = None  # lists of str: each item's minimum length
    pattern: str | None = None  # str: a regular expression the whole value must match
    is_min_exclusive: bool = False  # numbers: value must be > min (not >=)


@dataclass(frozen=True, slots=True)
class Syscall:
    """A syscall declaration: the single source of truth for dispatch, SDK and docs."""

    name: str
    doc: str
    args: tuple[Field, ...]
    result: str
    errors: tuple[str, ...] = ()
    example_args: dict = field(default_factory=dict)
    example_result: Any = None
    needs_token: bool = True
    is_streaming: bool = False

    @property
    def namespace(self) -> str:
        return self.name.split(".", 1)[0]


def _type_ok(value: Any, type_name: str) -> bool:
    for name in type_name.split("|"):
        if name == "nil" and value is None:
            return True
        types = WIRE_TYPES.get(name)
        if types is None:
            continue
        if isinstance(value, bool) and name in ("int", "float"):
            continue
        if isinstance(value, types):
            return True
    return False


def _check_bounds(f: Field, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise SyscallError(ErrorCode.INVALID_ARGUMENT, f"field '{f.name}': must be finite")
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    measure = value if is_number else len(value) if hasattr(value, "__len__") else None
    what = "value" if is_number else "length"
    if measure is None:
        return
    if f.min is not None and f.is_min_exclusive and measure <= f.min:
        raise SyscallError(ErrorCode.INVALID_ARGUMENT, f"field '{f.name}': {what} {measure} must be > {f.min}")
    if f.min is not None and measure < f.min:
        raise SyscallError(ErrorCode.INVALID_ARGUMENT, f"field '{f.name}': {what} {measure} < min {f.min}")
    if f.max is not None and measure > f.max:
        raise SyscallError(ErrorCode.INVALID_ARGUMENT, f"field '{f.name}': {what} {measure} > max {f.max}")


def check_field(f: Field, value: Any) -> Any:
    """Validate one present value against its field; return it (floats normalised)."""
    if not _type_ok(value, f.type):
        raise SyscallError(
            ErrorCode.INVALID_ARGUMENT,
            f"field '{f.name}': expected {f.type}, got {type(value).__name__}",
        )
    if value is None:
        return None
    if f.choices is not None and value not in f.choices:
        raise SyscallError(
            ErrorCode.INVALID_ARGUMENT, f"field '{f.name}': {value!r} not one of {list(f.choices)}"
        )
    _check_bounds(f, value)
    if f.pattern is not None and isinstance(value, str) and re.fullmatch(f.pattern, value) is None:
        raise SyscallError(
            ErrorCode.INVALID_ARGUMENT, f"field '{f.name}': {value[:64]!r} does not match {f.pattern}"
        )
    if f.items is not None and isinstance(value, (list, tuple)):
        _check_items(f, value)
        value = list(value)
    if "float" in f.type.split("|") and isinstance(value, int):
        value = float(value)
    return value


def _check_items(f: Field, value: list | tuple) -> None:
    for i, item in enumerate(value):
        if not _type_ok(item, f.items or "any"):
            raise SyscallError(
                ErrorCode.INVALID_ARGUMENT,
                f"field '{f.name}[{i}]': expected {f.items}, got {type(item).__name__}",
            )
        if f.item_min is not None and len(item) < f.item_min:
            raise SyscallError(
                ErrorCode.INVALID_ARGUMENT, f"field '{f.name}[{i}]': length {len(item)} < min {f.item_min}"
            )


def validate_args(call: Syscall, args: Any) -> dict:
    """Return a full argument dict (defaults filled) or raise INVALID_ARGUMENT."""
    if not isinstance(args, dict):
        raise SyscallError(ErrorCode.INVALID_ARGUMENT, f"args of '{call.name}' must be a map")
    known = {f.name: f for f in call.args}
    for key in args:
        if key not in known:
            raise SyscallError(
                ErrorCode.INVALID_ARGUMENT, f"field '{key}': unknown argument of '{call.name}'"
            )
    out: dict[str, Any] = {}
    for f in call.args:
        if f.name not in args:
            if f.required:
                raise SyscallError(ErrorCode.INVALID_ARGUMENT, f"field '{f.name}': required")
            out[f.name] = f.default
            continue
        out[f.name] = check_field(f, args[f.name])
    return out
