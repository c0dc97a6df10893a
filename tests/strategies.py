"""Hypothesis strategies derived from the syscall schemas (so new syscalls are covered for free)."""

from __future__ import annotations

from hypothesis import strategies as st

from syscalls.schema import Field, Syscall

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20), st.binary(max_size=20))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)


def _one_type(f: Field, t: str) -> st.SearchStrategy:
    lo = None if f.min is None else f.min
    hi = None if f.max is None else f.max
    if f.choices is not None:
        return st.sampled_from(f.choices)
    if t == "int":
        return st.integers(int(lo) if lo is not None else -(2**31), int(hi) if hi is not None else 2**31)
    if t == "float":
        return st.floats(lo if lo is not None else -1e6, hi if hi is not None else 1e6, allow_nan=False,
                         exclude_min=f.is_min_exclusive)
    if t == "bool":
        return st.booleans()
    size = {"min_size": int(lo or 0), "max_size": int(min(hi, 24)) if hi is not None else 24}
    if t == "str" and f.pattern is not None:
        regex = st.from_regex(f.pattern, fullmatch=True)
        return regex.filter(lambda s: size["min_size"] <= len(s) <= size["max_size"])
    if t == "str":
        return st.text(**size)
    if t == "bytes":
        return st.binary(**size)
    if t == "list":
        text = st.text(min_size=f.item_min or 0, max_size=max(8, f.item_min or 0))
        item = {"str": text, "int": st.integers(0, 255)}.get(f.items or "", st.integers(0, 255))
        return st.lists(item, min_size=max(size["min_size"], 0), max_size=min(size["max_size"], 8))
    if t == "map":
        return st.dictionaries(st.text(max_size=8), SCALARS, max_size=int(min(hi or 4, 4)))
    if t == "nil":
        return st.none()
    return VALUES


def field_values(f: Field) -> st.SearchStrategy:
    return st.one_of(*[_one_type(f, t) for t in f.type.split("|")])


@st.composite
def valid_args(draw: st.DrawFn, call: Syscall) -> dict:
    args = {}
    for f in call.args:
        if f.required or draw(st.booleans()):
            args[f.name] = draw(field_values(f))
    return args
