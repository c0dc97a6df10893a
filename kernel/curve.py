"""Transport security of the agent socket on tcp://: ZeroMQ CURVE (docs/protocol.md section 1).

The kernel's key pair lives in STATE/curve/ (`kernel.key`: the Z85 public key clients need,
mode 0644; `kernel.key_secret`: the secret key, mode 0600), made on first use and kept across
restarts. With an allow-list (`--curve-allow FILE`: one Z85 client public key per line, optionally
followed by a label) the kernel answers ZAP requests in its own event loop and admits only listed keys;
without one, any client that knows the kernel's public key may connect (traffic is encrypted
and the kernel authenticated either way). ipc:// relies on the socket file's permissions.
Owner: the kernel main thread.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import zmq
from zmq.utils import z85

log = logging.getLogger("aiosim.curve")
ZAP_ENDPOINT = "inproc://zeromq.zap.01"


def is_tcp(address: str) -> bool:
    return address.startswith("tcp://")


def kernel_keys(state_dir: Path) -> tuple[bytes, bytes]:
    """(public, secret) Z85 keys from STATE/curve/, created on first use."""
    folder = state_dir / "curve"
    public_file, secret_file = folder / "kernel.key", folder / "kernel.key_secret"
    if not (public_file.is_file() and secret_file.is_file()):
        folder.mkdir(mode=0o700, exist_ok=True)
        public, secret = zmq.curve_keypair()
        _write(secret_file, secret, 0o600)
        _write(public_file, public, 0o644)
    return public_file.read_bytes().strip(), secret_file.read_bytes().strip()


def _write(path: Path, key: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")


def read_allow_list(path: Path) -> set[bytes]:
    """Z85 client public keys: the first word of each non-blank line (words after it are a free
    label; no comment syntax, since Z85 keys may contain '#')."""
    keys = {line.split()[0].encode() for line in path.read_text().splitlines() if line.strip()}
    bad = [k for k in keys if len(k) != 40]
    if bad:
        raise SystemExit(f"aiosim kernel: --curve-allow {path}: {bad[0]!r} is not a 40-character Z85 key")
    return keys


def make_server(sock: zmq.Socket, state_dir: Path) -> bytes:
    """Make sock a CURVE server with the kernel's keys; returns the public key."""
    public, secret = kernel_keys(state_dir)
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_server = True
    return public


class ZapHandler:
    """Answers the ZAP requests of the context's sockets: CURVE peers must be on the allow-list;
    other mechanisms (NULL: the ipc sockets to workers and tools) are let through."""

    def __init__(self, ctx: zmq.Context, allowed: set[bytes]) -> None:
        self.allowed = allowed
        self.sock = ctx.socket(zmq.REP)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(ZAP_ENDPOINT)

    def on_readable(self, sock: zmq.Socket) -> None:
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                reply = self._answer(frames)
            except Exception:  # a malformed request is denied; the REP socket must answer to go on
                log.exception("bad ZAP request")
                reply = [b"1.0", frames[1] if len(frames) > 1 else b"", b"500", b"bad request", b"", b""]
            sock.send_multipart(reply)

    def _answer(self, frames: list[bytes]) -> list[bytes]:
        version, request_id, _domain, address, _identity, mechanism = frames[:6]
        if mechanism != b"CURVE":
            return [version, request_id, b"200", b"OK", b"", b""]
        client = z85.encode(frames[6])
        if client in self.allowed:
            return [version, request_id, b"200", b"OK", client, b""]
        log.warning("CURVE client key %s from %s is not on the allow-list", client.decode(), address.decode())
        return [version, request_id, b"400", b"client key not allowed", b"", b""]

    def close(self) -> None:
        self.sock.close(linger=0)
