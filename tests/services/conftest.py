from __future__ import annotations

import pytest

from tests.services.helpers import open_harness, remove_state


@pytest.fixture
def harness():
    """Services with no tool runners (memory, storage, access, audit tests)."""
    h = open_harness(tool_workers=0, mem_quota_bytes=100)
    yield h
    h.close()
    remove_state(h)
