"""The datetime tool: ISO 8601 parsing and formatting, duration arithmetic, differences, weekdays."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from kernel.services.tools.spec import ToolEnv, ToolSpec
from syscalls.errors import ErrorCode, SyscallError
from syscalls.schema import Field

OPS = ("now", "parse", "add", "subtract", "diff", "weekday")


def parse_iso(text: str | None, field: str) -> datetime:
    """A date ('2024-03-01') or datetime ('2024-03-01T12:00:00+02:00', 'Z' allowed)."""
    if not text:
        raise SyscallError(ErrorCode.INVALID_ARGUMENT, f"field '{field}': required for this op")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        try:
            return datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError:
            raise SyscallError(
                ErrorCode.INVALID_ARGUMENT, f"field '{field}': not an ISO 8601 date/time: {text!r}"
            ) from None


def describe(dt: datetime) -> dict:
    return {
        "iso": dt.isoformat(),
        "date": dt.date().isoformat(),
        "time": dt.time().isoformat(),
        "weekday": dt.strftime("%A"),
        "iso_weekday": dt.isoweekday(),
        "iso_week": dt.isocalendar()[1],
    }


def duration(args: dict) -> timedelta:
    return timedelta(
        weeks=args["weeks"],
        days=args["days"],
        hours=args["hours"],
        minutes=args["minutes"],
        seconds=args["seconds"],
    )


def diff(a: datetime, b: datetime) -> dict:
    if (a.tzinfo is None) != (b.tzinfo is None):
        raise SyscallError(
            ErrorCode.INVALID_ARGUMENT, "field 'other': cannot compare a naive and a zoned time"
        )
    delta = b - a
    return {
        "seconds": delta.total_seconds(),
        "days": delta.total_seconds() / 86400,
        "whole_days": delta.days,
    }


def _run(args: dict, env: ToolEnv) -> dict:
    op = args["op"]
    if op == "now":
        return describe(datetime.now(timezone.utc))
    dt = parse_iso(args["date"], "date")
    try:
        if op == "add":
            return describe(dt + duration(args))
        if op == "subtract":
            return describe(dt - duration(args))
    except OverflowError:
        raise SyscallError(
            ErrorCode.INVALID_ARGUMENT, "result out of the supported range"
        ) from None
    if op == "diff":
        return diff(dt, parse_iso(args["other"], "other"))
    return describe(dt)  # parse, weekday


def _amount(name: str) -> Field:
    return Field(name, "float", f"{name} to add/subtract", default=0.0, min=-1e7, max=1e7)


TOOL = ToolSpec(
    "datetime",
    "Date/time arithmetic on ISO 8601 values. op=now (UTC), parse/weekday (describe `date`), "
    "add/subtract (date +- weeks/days/hours/minutes/seconds), diff (other - date).",
    (
        Field("op", "str", "one of " + ", ".join(OPS), required=True, choices=OPS),
        Field("date", "str|nil", "ISO 8601 date or datetime", max=64),
        Field("other", "str|nil", "second date for diff", max=64),
        _amount("weeks"),
        _amount("days"),
        _amount("hours"),
        _amount("minutes"),
        _amount("seconds"),
    ),
    _run,
)
