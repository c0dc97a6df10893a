"""The Kernel: owns the agent socket, the process table, services and the LLM service.

Contract: one instance per kernel process, used only from the main thread's event loop.
Every agent leaves through `retire_agent`, the one exit path that frees its resources.
"""

from __future__ import annotations

import logging
import os

import zmq

from kernel.config import KernelConfig
from kernel.curve import ZapHandler, is_tcp, make_server, read_allow_list
from kernel.dispatch import Dispatcher
from kernel.llm.service import LLMService
from kernel.loop import EventLoop, drain
from kernel.pidwatch import PidWatch
from kernel.procs import AgentRecord, ProcessTable
from kernel.services import open_services
from syscalls.codec import pack

log = logging.getLogger("aiosim.kernel")

# zmq drops (disconnects) peers whose message exceeds this multiple of max_message_bytes;
# between 1x and this, the kernel answers TOO_LARGE.
HARD_LIMIT_FACTOR = 16
OPERATOR = "operator"


class Kernel:
    def __init__(self, config: KernelConfig) -> None:
        self.config = config
        self.loop = EventLoop()
        self.procs = ProcessTable()
        self.operator = self._register_operator()
        self.services = open_services(config, self.loop)
        self.llm = LLMService(self)
        self.dispatch = Dispatcher(self)
        self.zap: ZapHandler | None = None
        self.sock = self._bind_agent_socket()
        self.loop.add_reader(self.sock, lambda s: drain(s, self._on_frames))
        self.pids = PidWatch()
        self.loop.add_reader(self.pids.fileno(), lambda _: self.reap_exited_agents())
        self.loop.call_every(config.agent_reap_interval_s, self.reap_dead_agents)
        if config.debug:
            self.loop.on_idle(self.check_integrity)

    def _register_operator(self) -> AgentRecord:
        """The operator: a permanent agent whose token is in STATE/operator.token (mode 0600).
        Whoever can read the state dir may act as it (e.g. see the whole audit log)."""
        rec = self.procs.register(OPERATOR, os.getpid(), {"role": "operator"})
        path = self.config.state_dir / "operator.token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(rec.token + "\n")
        return rec

    def _bind_agent_socket(self) -> zmq.Socket:
        sock = self.loop.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.MAXMSGSIZE, self.config.max_message_bytes * HARD_LIMIT_FACTOR)
        sock.setsockopt(zmq.SNDHWM, 100_000)
        if is_tcp(self.config.address):
            self._secure(sock)
        sock.bind(self.config.address)
        if self.config.address.startswith("ipc://"):  # only the kernel's user may connect (protocol section 1)
            os.chmod(self.config.address.removeprefix("ipc://"), 0o600)
        return sock

    def _secure(self, sock: zmq.Socket) -> None:
        """tcp:// is encrypted with CURVE; an allow-list admits only the listed client keys."""
        public = make_server(sock, self.config.state_dir)
        if self.config.curve_allow is not None:
            self.zap = ZapHandler(self.loop.ctx, read_allow_list(self.config.curve_allow))
            self.loop.add_reader(self.zap.sock, self.zap.on_readable)
        log.info("CURVE on %s: public key %s (in %s/curve/kernel.key)%s", self.config.address, public.decode(),
                 self.config.state_dir, "; allow-list " + str(self.config.curve_allow) if self.zap else "")

    # ---- agent socket ----
    def _on_frames(self, frames: list[bytes]) -> None:
        identity, rest = frames[0], frames[1:]
        delim = [b""] if rest and rest[0] == b"" and len(rest) >= 2 else []
        body = rest[len(delim):]
        send = self._sender(identity, delim)
        peer = identity.hex()
        if len(body) != 1:
            self.dispatch.reject_frames(send, len(body), peer)
            return
        self.dispatch.handle(body[0], send, peer, is_req=bool(delim))

    def _sender(self, identity: bytes, delim: list[bytes]):
        def send(msg: dict) -> None:
            try:
                self.sock.send_multipart([identity, *delim, pack(msg)], zmq.NOBLOCK)
            except zmq.ZMQError as exc:  # peer gone or its queue full: its loss only
                log.warning("reply to %s dropped: %s", identity.hex(), exc)

        return send

    # ---- agents ----
    def admit_agent(self, name: str, pid: int | None, meta: dict | None) -> AgentRecord:
        """Register an agent; its process is watched (pidfd) so that its exit retires it."""
        rec = self.procs.register(name, pid, meta)
        if pid is not None and not self.pids.watch(rec.agent_id, pid):
            self.procs.poll_liveness(rec)
        return rec

    def retire_agent(self, rec: AgentRecord, state: str, code: int | None) -> int:
        """The one exit path: cancel requests, free memory and snapshots, drop the token."""
        if not self.procs.retire(rec, state, code):
            return 0
        self.pids.unwatch(rec.agent_id)
        num_cancelled = self.llm.on_agent_exit(rec.name)
        self.services.on_agent_exit(rec.name)
        log.info("agent %s (id %d, pid %s) %s, code %s; %d requests cancelled",
                 rec.name, rec.agent_id, rec.pid, state, code, num_cancelled)
        return num_cancelled

    def forget_identity(self, name: str) -> None:
        """Delete an identity: retire its live agent, then drop everything keyed by the name."""
        rec = self.procs.live_by_name(name)
        if rec is not None:
            self.retire_agent(rec, "killed", None)
        self.services.forget(name)
        (self.config.state_dir / "secrets" / f"{name}.secret").unlink(missing_ok=True)
        log.info("identity %s removed", name)

    def reap_exited_agents(self) -> None:
        """Agents whose process exited (pidfd) without proc.exit."""
        for agent_id in self.pids.exited():
            rec = self.procs.by_id(agent_id)
            if rec is not None:
                self.retire_agent(rec, "killed", None)

    def reap_dead_agents(self) -> None:
        """The periodic sweep, for the few pids the pidfd watch could not take."""
        for rec in self.procs.find_dead():
            self.retire_agent(rec, "killed", None)

    def check_integrity(self) -> None:
        self.procs.check_integrity()
        self.services.check_integrity()
        self.llm.check_integrity()

    # ---- lifecycle ----
    def run(self) -> None:
        self.llm.start()
        log.info("kernel serving on %s (state %s)", self.config.address, self.config.state_dir)
        self.loop.run()

    def shutdown(self) -> None:
        """One shutdown path: agents retired, workers and tool runners stopped, sockets closed."""
        for rec in self.procs.live():
            self.retire_agent(rec, "killed", None)
        (self.config.state_dir / "operator.token").unlink(missing_ok=True)
        self.llm.close()
        self.services.close()
        self.loop.remove_reader(self.sock)
        self.sock.close(linger=0)
        self.loop.remove_reader(self.pids.fileno())
        self.pids.close()
        if self.zap is not None:
            self.loop.remove_reader(self.zap.sock)
            self.zap.close()
        self.loop.close()
