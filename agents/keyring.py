"""Where clients keep identity secrets (docs/protocol.md section 3).

A name's secret is returned once, by its first proc.register; the SDK keeps it in memory for the
process and in a file (dir mode 0700, file mode 0600): by default `$AIOSIM_SECRETS_DIR/<name>.secret`,
else `<state dir>/secrets/<name>.secret` for an address `ipc://<state dir>/kernel.sock`, else
`~/.aiosim/secrets/<host>_<port>/<name>.secret` for `tcp://<host>:<port>`. Secrets are never logged.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_MEMORY: dict[tuple[str, str], str] = {}  # (address, name) -> secret, for this process


def default_secret_file(address: str, name: str) -> Path | None:
    env = os.environ.get("AIOSIM_SECRETS_DIR")
    if env:
        return Path(env) / f"{name}.secret"
    if address.startswith("ipc://") and address.endswith("/kernel.sock"):
        return Path(address.removeprefix("ipc://")).parent / "secrets" / f"{name}.secret"
    if address.startswith("tcp://"):
        where = re.sub(r"[^A-Za-z0-9.-]", "_", address.removeprefix("tcp://"))
        return Path.home() / ".aiosim" / "secrets" / where / f"{name}.secret"
    return None


def load(address: str, name: str, path: Path | None) -> str | None:
    """The secret kept for this name: its file first, then this process's memory."""
    if path is not None and path.is_file():
        return path.read_text().strip() or None
    return _MEMORY.get((address, name))


def keep(address: str, name: str, secret: str, path: Path | None) -> None:
    """Remember a new secret (in memory, and in its file with mode 0600 when there is one)."""
    _MEMORY[(address, name)] = secret
    if path is None:
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # (parents made by it get the umask's mode)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
