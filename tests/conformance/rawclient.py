"""A client written from docs/protocol.md alone: raw ZeroMQ + MessagePack, no aiosim SDK or codec
(msgpack is imported here on purpose: the point is an independent implementation of the spec),
and a kernel started as a plain subprocess."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgpack
import zmq

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "protocol.md").read_text()
VERSION = int(re.search(r"^# The aiosim protocol, version (\d+)$", DOC, re.M).group(1))
_ids = itertools.count(1)


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


class Raw:
    """One socket (DEALER by default) speaking the wire format of section 2."""

    def __init__(self, address: str, kind: int = zmq.DEALER, curve: dict | None = None) -> None:
        self.sock = zmq.Context.instance().socket(kind)
        self.sock.setsockopt(zmq.LINGER, 0)
        for opt, value in (curve or {}).items():
            setattr(self.sock, opt, value)
        self.sock.connect(address)
        self.token: str | None = None
        self.name = ""

    def send(self, call: str, args: dict | None = None, token: str | None = None, req_id: Any = None, **env) -> Any:
        req_id = next(_ids) if req_id is None else req_id
        msg = {"v": VERSION, "id": req_id, "call": call, "args": args or {}, **env}
        if token or self.token:
            msg["token"] = token or self.token
        self.sock.send(pack(msg))
        return req_id

    def recv(self, timeout_s: float = 30.0) -> dict:
        assert self.sock.poll(int(timeout_s * 1000)), "no reply"
        return unpack(self.sock.recv())

    def call(self, call: str, args: dict | None = None, timeout_s: float = 60.0, **kw) -> tuple[dict, list[dict]]:
        """Send one request; return its reply and the stream messages that came before it."""
        req_id = self.send(call, args, **kw)
        chunks = []
        while True:
            msg = self.recv(timeout_s)
            assert msg["id"] == req_id, msg
            if "stream" not in msg:
                return msg, chunks
            chunks.append(msg)

    def ok(self, call: str, args: dict | None = None, **kw) -> Any:
        reply, _ = self.call(call, args, **kw)
        assert reply["ok"], reply
        return reply["result"]

    def error(self, call: str, args: dict | None = None, **kw) -> dict:
        reply, _ = self.call(call, args, **kw)
        assert not reply["ok"], reply
        return reply["error"]

    def register(self, name: str, **args) -> dict:
        result = self.ok("proc.register", {"name": name, "pid": os.getpid(), **args})
        self.token, self.name = result["token"], name
        return result

    def close(self) -> None:
        self.sock.close(linger=0)


class Kernel:
    """`aiosim kernel` as a subprocess; ready when llm.info answers."""

    def __init__(self, state_dir: Path, *flags: str) -> None:
        self.state_dir = state_dir
        self.address = flags[flags.index("--address") + 1] if "--address" in flags else f"ipc://{state_dir}/kernel.sock"
        argv = [sys.executable, "-m", "kernel", "kernel", "--state-dir", str(state_dir), *flags]
        self.out = open(state_dir.parent / f"{state_dir.name}.out", "wb")
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=self.out, stderr=subprocess.STDOUT)

    def wait_ready(self, curve: dict | None = None, timeout_s: float = 120.0) -> Kernel:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"kernel exited {self.proc.returncode}"
            raw = Raw(self.address, curve=curve)
            try:
                raw.send("llm.info")
                if raw.sock.poll(1000) and unpack(raw.sock.recv()).get("ok"):
                    return self
            finally:
                raw.close()
            time.sleep(0.2)
        raise AssertionError("kernel not ready")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(60)
        self.out.close()
        return code


def doc_example(call: str) -> tuple[dict, dict]:
    """The (request, reply) example of a call in the generated reference of docs/protocol.md."""
    section = DOC[DOC.index(f"### `{call}`"):]
    block = section[section.index("```json") + 8: section.index("```", section.index("```json") + 7)]
    request, reply = [unpack(pack(__import__("json").loads(line))) for line in block.strip().splitlines()]
    return request, reply
