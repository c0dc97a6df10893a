"""The unit_convert tool: length, mass, temperature, time and data sizes."""

from __future__ import annotations

from kernel.services.tools.spec import ToolEnv, ToolSpec
from syscalls.errors import ErrorCode, SyscallError
from syscalls.schema import Field

# unit -> (dimension, factor to the dimension's base unit); temperature is affine, handled apart
LINEAR: dict[str, tuple[str, float]] = {
    "m": ("length", 1.0),
    "km": ("length", 1e3),
    "cm": ("length", 1e-2),
    "mm": ("length", 1e-3),
    "um": ("length", 1e-6),
    "nm": ("length", 1e-9),
    "in": ("length", 0.0254),
    "ft": ("length", 0.3048),
    "yd": ("length", 0.9144),
    "mi": ("length", 1609.344),
    "nmi": ("length", 1852.0),
    "kg": ("mass", 1.0),
    "g": ("mass", 1e-3),
    "mg": ("mass", 1e-6),
    "t": ("mass", 1e3),
    "lb": ("mass", 0.45359237),
    "oz": ("mass", 0.028349523125),
    "st": ("mass", 6.35029318),
    "s": ("time", 1.0),
    "ms": ("time", 1e-3),
    "us": ("time", 1e-6),
    "ns": ("time", 1e-9),
    "min": ("time", 60.0),
    "h": ("time", 3600.0),
    "d": ("time", 86400.0),
    "wk": ("time", 604800.0),
    "yr": ("time", 31557600.0),  # Julian year
    "bit": ("data", 0.125),
    "B": ("data", 1.0),
    "KB": ("data", 1e3),
    "MB": ("data", 1e6),
    "GB": ("data", 1e9),
    "TB": ("data", 1e12),
    "KiB": ("data", 1024.0),
    "MiB": ("data", 1024.0**2),
    "GiB": ("data", 1024.0**3),
    "TiB": ("data", 1024.0**4),
}
TEMPERATURE = ("C", "F", "K")


def _to_kelvin(value: float, unit: str) -> float:
    return {"C": value + 273.15, "F": (value - 32) * 5 / 9 + 273.15, "K": value}[unit]


def _from_kelvin(value: float, unit: str) -> float:
    return {"C": value - 273.15, "F": (value - 273.15) * 9 / 5 + 32, "K": value}[unit]


def _dimension(unit: str, field: str) -> str:
    if unit in TEMPERATURE:
        return "temperature"
    if unit in LINEAR:
        return LINEAR[unit][0]
    raise SyscallError(ErrorCode.INVALID_ARGUMENT, f"field '{field}': unknown unit {unit!r}")


def convert(value: float, src: str, dst: str) -> float:
    dim_src, dim_dst = _dimension(src, "from"), _dimension(dst, "to")
    if dim_src != dim_dst:
        raise SyscallError(
            ErrorCode.INVALID_ARGUMENT,
            f"field 'to': cannot convert {dim_src} ({src}) to {dim_dst} ({dst})",
        )
    if dim_src == "temperature":
        return _from_kelvin(_to_kelvin(value, src), dst)
    return value * LINEAR[src][1] / LINEAR[dst][1]


def _run(args: dict, env: ToolEnv) -> dict:
    return {"value": convert(args["value"], args["from"], args["to"]), "unit": args["to"]}


TOOL = ToolSpec(
    "unit_convert",
    "Converts a quantity between units of length, mass, temperature (C F K), time and data "
    "sizes. Units: " + " ".join([*LINEAR, *TEMPERATURE]) + ".",
    (
        Field("value", "float", "the quantity", required=True),
        Field("from", "str", "source unit, e.g. 'km'", required=True, min=1, max=8),
        Field("to", "str", "target unit, e.g. 'mi'", required=True, min=1, max=8),
    ),
    _run,
)
