"""One live kernel for the conformance modules, started and spoken to without the SDK."""

from __future__ import annotations

import itertools

import pytest

from tests.conformance.rawclient import Kernel, Raw

MAX_MESSAGE_BYTES = 65536
_numbers = itertools.count()


@pytest.fixture(scope="session")
def kernel(tmp_path_factory):
    k = Kernel(tmp_path_factory.mktemp("conf") / "s", "--scheduler", "rr", "--quantum", "2", "--workers", "1",
               "--max-message-bytes", str(MAX_MESSAGE_BYTES), "--debug")
    try:
        yield k.wait_ready()
    finally:
        assert k.stop() == 0
        assert "Traceback" not in (k.state_dir / "kernel.log").read_text()


@pytest.fixture
def agent(kernel):
    """A registered raw DEALER client with a fresh name (conf-<n>)."""
    raw = Raw(kernel.address)
    raw.register(f"conf-{next(_numbers)}")
    yield raw
    raw.close()
