"""The one syscall list. Dispatch, SDK methods and docs/protocol.md all derive from SYSCALLS."""

from __future__ import annotations

from syscalls.decl_llm import LLM
from syscalls.decl_proc import IDENTITY, PROC
from syscalls.decl_services import ACCESS, MEM, STORAGE, TOOL
from syscalls.schema import Syscall

PROTOCOL_VERSION = 2  # docs/protocol.md section 8: changelog

SYSCALLS: dict[str, Syscall] = {s.name: s for s in (*PROC, *LLM, *MEM, *STORAGE, *TOOL, *ACCESS, *IDENTITY)}


def method_name(call: str) -> str:
    """SDK/handler method name of a call: 'mem.put' -> 'mem_put'."""
    return call.replace(".", "_")
