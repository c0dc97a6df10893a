"""Drive service handlers exactly as the dispatcher does: schema validation, then the handler,
with a real CallContext whose kernel is a stand-in holding the real Services."""

from __future__ import annotations

import importlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kernel.config import KernelConfig
from kernel.context import DEFERRED, CallContext, Deferred
from kernel.loop import EventLoop
from kernel.services import Services, open_services
from syscalls.schema import validate_args
from syscalls.table import SYSCALLS, method_name


def short_state_dir() -> Path:
    """A short path: ipc socket paths must stay under ~100 bytes."""
    return Path(tempfile.mkdtemp(prefix="aio-svc-"))


@dataclass
class LLMStandIn:
    """The LLM service as llm.cancel / llm.snapshots reach it after their access check: records
    whose requests were cancelled or listed (the service itself is tested with real workers)."""

    cancelled: list[tuple[str, str]] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)

    def cancel(self, owner: str, label: str) -> bool:
        self.cancelled.append((owner, label))
        return True

    def snapshots(self, owner: str) -> list[dict]:
        self.listed.append(owner)
        return []


@dataclass
class Harness:
    config: KernelConfig
    loop: EventLoop
    services: Services
    sent: list[dict] = field(default_factory=list)
    operator: SimpleNamespace = field(default_factory=lambda: SimpleNamespace(name="operator"))
    stopped: set[str] = field(default_factory=set)  # agent names not running (default: all run)
    llm: LLMStandIn = field(default_factory=lambda: LLMStandIn())

    def ctx(self, caller: str, call: str) -> CallContext:
        """Caller "operator" is the kernel's operator record (sees the whole audit log)."""
        procs = SimpleNamespace(is_live_name=lambda name: name not in self.stopped, check_free=lambda name: None,
                                register=lambda name, pid, meta: SimpleNamespace(agent_id=1, token=f"1.{name}"))
        kernel = SimpleNamespace(services=self.services, config=self.config, operator=self.operator, procs=procs,
                                 admit_agent=procs.register, forget_identity=self.services.forget, llm=self.llm)
        agent = self.operator if caller == "operator" else SimpleNamespace(name=caller)
        return CallContext(kernel, SYSCALLS[call], agent, len(self.sent), self.sent.append)

    def call(self, caller: str, call: str, **args: Any) -> Any:
        """Validate args against the declaration and run the handler; return its result
        (DEFERRED for tool.call) or raise SyscallError."""
        handler = getattr(
            importlib.import_module(f"kernel.handlers.{SYSCALLS[call].namespace}"),
            method_name(call),
        )
        return handler(self.ctx(caller, call), validate_args(SYSCALLS[call], args))

    def reopen(self) -> None:
        self.services.close()
        self.services = open_services(self.config, self.loop)

    def close(self) -> None:
        self.services.close()
        self.loop.close()


def open_harness(state_dir: Path | None = None, **overrides: Any) -> Harness:
    config = KernelConfig(state_dir=state_dir or short_state_dir(), **overrides)
    loop = EventLoop()
    return Harness(config, loop, open_services(config, loop))


def remove_state(h: Harness) -> None:
    shutil.rmtree(h.config.state_dir, ignore_errors=True)


__all__ = ["DEFERRED", "Deferred", "Harness", "open_harness", "remove_state", "short_state_dir"]
