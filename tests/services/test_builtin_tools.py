"""unit_convert, datetime and the tool arg schemas, called directly (no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.services.text import rank, snippet, tokenize
from kernel.services.tools.registry import ToolRegistry
from kernel.services.tools.spec import ToolEnv
from kernel.services.tools.units import LINEAR, convert
from syscalls.errors import ErrorCode, SyscallError

ENV = ToolEnv("a", Path("/nonexistent"))
REGISTRY = ToolRegistry()


def run(name: str, **args):
    tool = REGISTRY.get(name)
    return tool.fn(tool.validate(args), ENV)


@pytest.mark.parametrize(
    "value, src, dst, expected",
    [
        (1, "mi", "km", 1.609344),
        (100, "C", "F", 212.0),
        (0, "K", "C", -273.15),
        (-40, "F", "C", -40.0),
        (1, "GiB", "MiB", 1024.0),
        (8, "bit", "B", 1.0),
        (90, "min", "h", 1.5),
        (1, "lb", "g", 453.59237),
        (12, "in", "ft", 1.0),
    ],
)
def test_unit_convert_known_values(value, src, dst, expected):
    assert run("unit_convert", value=value, **{"from": src, "to": dst})["value"] == pytest.approx(
        expected
    )


@given(st.sampled_from(sorted(LINEAR)), st.sampled_from(sorted(LINEAR)), st.floats(-1e6, 1e6))
def test_unit_convert_round_trips_within_a_dimension(a, b, x):
    if LINEAR[a][0] != LINEAR[b][0]:
        with pytest.raises(SyscallError, match="field 'to'"):
            convert(x, a, b)
        return
    assert convert(convert(x, a, b), b, a) == pytest.approx(x, rel=1e-9, abs=1e-9)


def test_unit_convert_rejects_unknown_units():
    with pytest.raises(SyscallError, match="field 'from'"):
        run("unit_convert", value=1, **{"from": "parsec", "to": "m"})


def test_datetime_arithmetic_and_weekday():
    assert run("datetime", op="add", date="2024-02-28", days=2)["date"] == "2024-03-01"  # leap year
    assert (
        run("datetime", op="subtract", date="2024-03-01T10:00:00", hours=11)["iso"]
        == "2024-02-29T23:00:00"
    )
    assert run("datetime", op="weekday", date="2024-07-04")["weekday"] == "Thursday"
    diff = run("datetime", op="diff", date="2024-01-01", other="2024-12-25")
    assert diff["whole_days"] == 359 and diff["seconds"] == 359 * 86400
    zoned = run("datetime", op="parse", date="2024-01-01T00:00:00Z")
    assert zoned["iso"] == "2024-01-01T00:00:00+00:00"
    assert run("datetime", op="now")["iso"].endswith("+00:00")


@pytest.mark.parametrize(
    "args, field",
    [
        ({"op": "add"}, "date"),
        ({"op": "parse", "date": "tomorrow"}, "date"),
        ({"op": "diff", "date": "2024-01-01"}, "other"),
        ({"op": "diff", "date": "2024-01-01", "other": "2024-01-01T00:00:00+01:00"}, "other"),
        ({"op": "fly", "date": "2024-01-01"}, "op"),
        ({"op": "add", "date": "2024-01-01", "days": "x"}, "days"),
    ],
)
def test_datetime_rejects_bad_args_naming_the_field(args, field):
    with pytest.raises(SyscallError) as info:
        run("datetime", **args)
    assert (
        info.value.code == ErrorCode.INVALID_ARGUMENT and f"field '{field}'" in info.value.message
    )


def test_datetime_out_of_range_is_invalid():
    with pytest.raises(SyscallError):
        run("datetime", op="add", date="9999-12-31", days=2)


def test_keyword_search_helpers():
    assert tokenize("Plan a TRIP, to Lisbon!") == {"plan", "a", "trip", "to", "lisbon"}
    hits = rank(
        "lisbon trip", [("k1", {"goal": "trip"}), ("k2", ["Lisbon", "trip"]), ("k3", 5)], 10
    )
    assert hits == [{"key": "k2", "score": 1.0}, {"key": "k1", "score": 0.5}]
    assert snippet("x" * 200 + " jazz", {"jazz"}).endswith("jazz")
