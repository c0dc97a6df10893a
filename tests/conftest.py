"""Shared fixtures. One real kernel (with one worker on the tiny model) serves most
integration tests, so torch loads once per session."""

from __future__ import annotations

import logging
import os

import pytest
from hypothesis import HealthCheck, settings

from tests.kernelproc import KernelProc

settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


class _Deprecations(logging.Handler):
    """Collects what transformers logs about deprecated usage (it logs, it does not warn)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "deprecat" in message.lower():
            self.messages.append(message)


@pytest.fixture(autouse=True)
def no_logged_deprecations():
    """Any deprecation transformers logs during a test (our calls use a deprecated API) fails it."""
    handler = _Deprecations()
    library = logging.getLogger("transformers")
    library.addHandler(handler)
    try:
        yield
    finally:
        library.removeHandler(handler)
    assert not handler.messages, f"deprecated usage logged: {handler.messages}"


@pytest.fixture(scope="session")
def kernel(tmp_path_factory):
    """A live kernel: rr, quantum 2, max-batch 1, one worker, integrity checks when idle."""
    k = KernelProc(tmp_path_factory.mktemp("kernel"), "--scheduler", "rr", "--quantum", "2",
                   "--max-message-bytes", "65536", "--mem-quota", "4096", "--tool-timeout-s", "2")
    try:
        yield k.wait_ready()
    finally:
        k.stop_cleanly()
