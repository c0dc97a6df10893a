"""IdentityManager: persistent agent identities (a name and the hash of its secret).

The first registration of a new name creates its identity and hands out the secret once;
every later registration of that name must present it. Stored in STATE/identity.lmdb,
sub-database `identities`: name utf-8 -> pack([created unix time, sha256(secret)]). Secrets are
compared in constant time (hmac.compare_digest on digests) and never logged or stored in clear.
Owner: the kernel main thread.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Protocol

from syscalls.codec import pack, unpack
from syscalls.errors import ErrorCode, SyscallError

DB_NAMES = ("identities", "grants")
RESERVED = ("operator",)  # the kernel's own agent: no identity, its token is in STATE/operator.token


class IdentityStore(Protocol):
    def get(self, db: str, key: bytes) -> bytes | None: ...
    def scan(self, db: str, prefix: bytes = b"") -> list[tuple[bytes, bytes]]: ...
    def write(self, ops: list[tuple[str, bytes, bytes | None]]) -> None: ...


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class IdentityManager:
    def __init__(self, store: IdentityStore) -> None:
        self.store = store

    def exists(self, name: str) -> bool:
        return self.store.get("identities", name.encode()) is not None

    def create(self, name: str) -> str:
        """A new identity; returns its secret (the only time it is seen)."""
        if name in RESERVED:
            raise SyscallError(ErrorCode.INVALID_ARGUMENT, f"field 'name': {name!r} is reserved")
        if self.exists(name):
            raise SyscallError(ErrorCode.ALREADY_EXISTS, f"identity {name!r} exists")
        secret = secrets.token_hex(32)
        self.store.write([("identities", name.encode(), pack([time.time(), _digest(secret)]))])
        return secret

    def is_secret_valid(self, name: str, secret: str | None) -> bool:
        data = self.store.get("identities", name.encode())
        if data is None or secret is None:
            return False
        return hmac.compare_digest(unpack(data)[1], _digest(secret))

    def find(self, secret: str) -> str | None:
        """The name whose secret this is (every digest is compared, in constant time each)."""
        digest, found = _digest(secret), None
        for raw, data in self.store.scan("identities"):
            if hmac.compare_digest(unpack(data)[1], digest):
                found = raw.decode()
        return found

    def admit(self, name: str, secret: str | None) -> str | None:
        """Registration: a new name gets an identity (returns its secret); a known one must
        present its secret (returns None) or UNAUTHENTICATED is raised."""
        if name in RESERVED or not self.exists(name):
            return self.create(name)
        if not self.is_secret_valid(name, secret):
            why = "absent" if secret is None else "wrong"
            raise SyscallError(ErrorCode.UNAUTHENTICATED, f"secret of identity {name!r} {why}")
        return None

    def remove(self, name: str) -> bool:
        if not self.exists(name):
            return False
        self.store.write([("identities", name.encode(), None)])
        return True

    def list(self) -> list[dict]:
        return [{"name": raw.decode(), "created": unpack(data)[0]} for raw, data in self.store.scan("identities")]
