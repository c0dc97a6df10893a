"""The tool registry: every tool the kernel offers, by name (the kernel validates args with it;
runners look up the function)."""

from __future__ import annotations

from kernel.services.tools import calculator, dates, misc, units
from kernel.services.tools.spec import ToolSpec
from syscalls.errors import ErrorCode, SyscallError

BUILTIN_TOOLS: tuple[ToolSpec, ...] = (
    calculator.TOOL,
    units.TOOL,
    dates.TOOL,
    misc.STORAGE_SEARCH,
    misc.SLEEP,
    misc.CRASH,
    misc.ECHO,
)


class ToolRegistry:
    def __init__(self, tools: tuple[ToolSpec, ...] = BUILTIN_TOOLS) -> None:
        self._tools = {t.name: t for t in tools}

    def get(self, name: str) -> ToolSpec:
        tool = self._tools.get(name)
        if tool is None:
            raise SyscallError(ErrorCode.NOT_FOUND, f"no tool {name!r}")
        return tool

    def describe(self) -> list[dict]:
        return [t.describe() for t in self._tools.values()]
