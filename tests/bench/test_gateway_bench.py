"""`aiosim bench gateway`'s pure parts: the per-count summary (with and without the lean HTTP path) and the
machine's busy time."""

from __future__ import annotations

import time

import pytest

from benchmarks.gateway import machine_busy_s, percentile, summarize


def _wave(tokens_per_s: float, ttft_ms: float, path_ms: float, cpu_s: float, share: float | None) -> dict:
    return {"tokens_per_s": tokens_per_s, "ttft_p50_ms": ttft_ms, "ttft_p99_ms": 2 * ttft_ms, "path_p50_ms": path_ms,
            "path_p99_ms": 2 * path_ms, "clients_cpu_s": cpu_s, "machine_busy_share": share, "num_errors": 0}


def test_summary_takes_medians_and_compares_the_paths():
    waves = {"sdk": [_wave(1000, 50, 1, 2.0, 0.9), _wave(1200, 40, 2, 3.0, 0.95), _wave(1100, 45, 1.5, 2.5, None)],
             "gateway": [_wave(900, 60, 5, 6.0, 1.0), _wave(1000, 52, 6, 7.0, 0.98), _wave(950, 55, 4, 8.0, 0.99)]}
    out = summarize(64, waves)
    assert out["sdk"]["tokens_per_s"] == 1100 and out["gateway"]["tokens_per_s"] == 950
    assert out["tokens_per_s_ratio"] == round(950 / 1100, 3)
    assert out["ttft_p50_overhead_ms"] == 10 and out["path_p50_overhead_ms"] == 3.5
    assert out["gateway"]["clients_cpu_s"] == 7.0 and out["sdk"]["machine_busy_share"] == 0.925
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert "http" not in out and "http_path_p50_overhead_ms" not in out


def test_summary_compares_the_lean_http_path_with_the_sdk_too():
    waves = {"sdk": [_wave(1000, 50, 1, 2.0, 0.9)], "gateway": [_wave(900, 60, 9, 6.0, 1.0)],
             "http": [_wave(980, 54, 3.5, 2.2, 0.95)]}
    out = summarize(16, waves)
    assert out["http_tokens_per_s_ratio"] == 0.98 and out["http_ttft_p50_overhead_ms"] == 4
    assert out["http_path_p50_overhead_ms"] == 2.5 and out["path_p50_overhead_ms"] == 8


def test_machine_busy_time_counts_a_busy_loop():
    before = machine_busy_s()
    if before is None:
        pytest.skip("no /proc/stat: the figure is left out")
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    assert machine_busy_s() - before >= 0.25
