"""A tool runner process: `python -m kernel.services.tools.runner ADDRESS IDENTITY STORAGE_PATH`.

Connects a DEALER (identity IDENTITY) to the kernel's tool ROUTER, sends
{"type": "ready", "pid"}, then executes one call at a time:
  kernel -> runner {"type": "call", "call_id", "tool", "args", "caller", "max_output_bytes"}
  runner -> kernel {"type": "result", "call_id", "ok": true, "result"}
                 | {"type": "result", "call_id", "ok": false, "code", "message"}
  kernel -> runner {"type": "shutdown"}: exit 0.
The runner exits by itself when its parent (the kernel) is gone. A tool that hangs or kills the
process is handled by the kernel (kill + respawn), never here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import zmq

from kernel.lifeline import die_with_parent
from kernel.services.tools.registry import ToolRegistry
from kernel.services.tools.spec import ToolEnv
from syscalls.codec import pack, unpack
from syscalls.errors import ErrorCode, SyscallError

PARENT_CHECK_MS = 500


def execute(registry: ToolRegistry, msg: dict, storage_path: Path) -> dict:
    """Run one call; every outcome becomes a result message."""
    reply = {"type": "result", "call_id": msg["call_id"]}
    try:
        tool = registry.get(msg["tool"])
        result = tool.fn(msg["args"], ToolEnv(msg["caller"], storage_path))
        size = len(pack(result))
    except SyscallError as exc:
        return {**reply, "ok": False, "code": exc.code.value, "message": exc.message}
    except Exception as exc:  # a tool's own failure: reported, never fatal to the runner
        return {
            **reply,
            "ok": False,
            "code": ErrorCode.TOOL_ERROR.value,
            "message": f"{type(exc).__name__}: {exc}",
        }
    if size > msg["max_output_bytes"]:
        return {
            **reply,
            "ok": False,
            "code": ErrorCode.TOOL_ERROR.value,
            "message": f"output is {size} bytes, limit {msg['max_output_bytes']}",
        }
    return {**reply, "ok": True, "result": result}


def serve(address: str, identity: str, storage_path: Path) -> int:
    parent = die_with_parent()  # and the loop below checks the parent too
    registry = ToolRegistry()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IDENTITY, identity.encode())
    sock.connect(address)
    sock.send(pack({"type": "ready", "pid": os.getpid()}))
    try:
        while os.getppid() == parent:
            if not sock.poll(PARENT_CHECK_MS):
                continue
            msg = unpack(sock.recv())
            if msg.get("type") == "shutdown":
                break
            if msg.get("type") == "call":
                sock.send(pack(execute(registry, msg, storage_path)))
    finally:
        sock.close(linger=0)
        ctx.term()
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
