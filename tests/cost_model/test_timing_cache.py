"""The cycle model's figures kept on disk: a second plan of the same design reads them back
equal to a fresh run; another folding or batch is another entry; QFAB_CYCLE_CACHE=0 keeps
nothing."""

from pathlib import Path

import pytest
from qfab.compiler.backend.plan import plan
from qfab.cost_model import timing, timing_cache

from qfab.api import lower_model

MODEL = Path(__file__).resolve().parents[2] / "examples" / "digits" / "digits_int8.onnx"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("QFAB_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("QFAB_CYCLE_CACHE", raising=False)
    monkeypatch.setattr(timing, "KEEP_SECONDS", 0.0)  # keep even a quick run
    return tmp_path / "cycles"


def test_a_second_plan_reads_the_same_figures(cache, monkeypatch):
    graph = lower_model(MODEL)
    first = timing.plan_timing(plan(graph), 2)
    assert len(list(cache.glob("*.pickle"))) == 1

    def no_run(*args):
        raise AssertionError("the cycle model ran again")

    monkeypatch.setattr(timing, "_plan_timing", no_run)
    assert timing.plan_timing(plan(graph), 2) == first


def test_another_folding_or_batch_is_another_entry(cache):
    graph = lower_model(MODEL)
    a, b = plan(graph), plan(graph, max_pe=2, max_simd=2)
    assert timing_cache.key(a, 2) != timing_cache.key(b, 2)
    assert timing_cache.key(a, 2) != timing_cache.key(a, 3)
    assert timing_cache.key(a, 2) == timing_cache.key(plan(graph), 2)


def test_switched_off(cache, monkeypatch):
    monkeypatch.setenv("QFAB_CYCLE_CACHE", "0")
    timing.plan_timing(plan(lower_model(MODEL)), 2)
    assert not cache.exists()
