"""Generated Verilog kept by content: the same design again is read back, not converted; a
different design (other weights) is a different entry; the cache stays under its cap."""

from pathlib import Path

import numpy as np
import pytest
from qfab.compiler.backend import verilog_cache
from qfab.compiler.backend.design import Design
from qfab.compiler.backend.plan import plan

from qfab.api import lower_model

ROOT = Path(__file__).resolve().parents[2]
MLP = ROOT / "examples" / "tiny" / "mlp_int2.onnx"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("QFAB_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("QFAB_VERILOG_CACHE", "1")
    return tmp_path / "verilog"


def _design() -> Design:
    graph = lower_model(MLP)
    return Design(graph, plan(graph, max_pe=2, max_simd=2), str(MLP))


@pytest.mark.filterwarnings("ignore:.*created but never used")  # the stub converts nothing
def test_the_same_design_is_read_back_and_another_converted(cache, monkeypatch):
    fresh = _design().verilog()
    assert len(list(cache.glob("*.v"))) == 1

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr("qfab.hw._verilog.convert", no_conversion)
    assert _design().verilog() == fresh
    other = _design()
    mvu = next(b for s in other.plan.stages for b in s.blocks if b.kind == "mvu")
    mvu.params["weights"] = -np.asarray(mvu.params["weights"])
    with pytest.raises(AssertionError, match="converted again"):
        other.verilog()
    monkeypatch.undo()


def test_off_keeps_nothing(cache, monkeypatch):
    monkeypatch.setenv("QFAB_VERILOG_CACHE", "0")
    _design().verilog()
    assert not cache.exists()


def test_the_least_recently_used_go_beyond_the_cap(cache, monkeypatch):
    import os

    monkeypatch.setattr(verilog_cache, "CAP_BYTES", 25)
    for k in range(4):
        verilog_cache.cached(("entry", k), lambda k=k: f"module m{k}; endmodule\n")
        path = cache / f"{verilog_cache.key(('entry', k))}.v"
        os.utime(path, (k, k))  # entry k used at time k
    left = sorted(p.read_text() for p in cache.glob("*.v"))
    assert left == ["module m3; endmodule\n"]
