"""Client side of CURVE on tcp:// (docs/protocol.md section 1): the kernel's public key, from
`server_key=` or $AIOSIM_SERVER_KEY (a Z85 key or a file holding one, e.g. STATE/curve/kernel.key),
and the client's key pair, from `client_keys=` or $AIOSIM_CLIENT_KEYS (a file written by
`aiosim keygen`), else a fresh pair per connection (enough unless the kernel has an allow-list)."""

from __future__ import annotations

import os
from pathlib import Path

import zmq


class MissingServerKey(ValueError):
    """A tcp:// address without the kernel's public key."""


ServerKey = str | bytes | Path | None
ClientKeys = tuple[bytes, bytes] | str | Path | None


def read_key(key: str | bytes | Path) -> bytes:
    """A Z85 key given as itself or as the path of a file holding it."""
    if isinstance(key, bytes):
        return key.strip()
    path = Path(key)
    if path.is_file():
        return path.read_bytes().strip()
    return str(key).strip().encode()


def read_client_keys(keys: tuple[bytes, bytes] | str | Path) -> tuple[bytes, bytes]:
    if isinstance(keys, tuple):
        return keys
    public, secret = Path(keys).read_bytes().split()[:2]
    return public, secret


def write_client_keys(path: Path) -> bytes:
    """A new client key pair in `path` (public line, secret line; mode 0600); returns the public key."""
    public, secret = zmq.curve_keypair()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(public + b"\n" + secret + b"\n")
    return public


def secure(sock: zmq.Socket, address: str, server_key: ServerKey = None, client_keys: ClientKeys = None) -> None:
    """Make sock a CURVE client when address is tcp:// (before connect); ipc:// is left as is."""
    if not address.startswith("tcp://"):
        return
    server_key = server_key or os.environ.get("AIOSIM_SERVER_KEY")
    if not server_key:
        raise MissingServerKey(f"{address}: tcp:// is CURVE-encrypted: give the kernel's public key (server_key=, "
                         "--server-key or $AIOSIM_SERVER_KEY; it is in the kernel's STATE/curve/kernel.key)")
    client_keys = client_keys or os.environ.get("AIOSIM_CLIENT_KEYS")
    public, secret = read_client_keys(client_keys) if client_keys else zmq.curve_keypair()
    sock.curve_serverkey = read_key(server_key)
    sock.curve_publickey = public
    sock.curve_secretkey = secret
