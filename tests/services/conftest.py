from __future__ import annotations

import pytest

from tests.services.helpers import open_harness, remove_state


@pytest.fixture
def harness():
    """Services with no tool runners (memory, storage, access, audit tests); agents a, b and c
    have identities (they registered once), so grants to them are possible."""
    h = open_harness(tool_workers=0, mem_quota_bytes=100)
    for name in ("a", "b", "c"):
        h.services.identities.create(name)
    yield h
    h.close()
    remove_state(h)
