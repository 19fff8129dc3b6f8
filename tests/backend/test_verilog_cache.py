"""Generated Verilog kept by content: the same design again is read back, not converted; a
different design (other weights) is a different entry; the cache stays under its cap."""

import enum
from dataclasses import dataclass
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


class _Opaque:
    """An object whose repr leaves out what it holds."""

    def __init__(self, weights):
        self.weights = weights

    def __repr__(self) -> str:
        return "_Opaque(...)"


@dataclass(frozen=True)
class _Params:
    weights: np.ndarray
    mode: str


class _Mode(enum.Enum):
    FOLDED = 1
    UNROLLED = 2


def test_a_key_is_made_of_content_and_anything_else_is_refused():
    big = np.arange(5000, dtype=np.int64)
    changed = big.copy()
    changed[2500] += 1
    assert repr(big) == repr(changed)  # NumPy elides the middle
    assert verilog_cache.key(big) != verilog_cache.key(changed)
    assert verilog_cache.key(big) != verilog_cache.key(big.astype(np.int32))
    assert verilog_cache.key(big) != verilog_cache.key(big.reshape(50, 100))
    assert (verilog_cache.key(_Params(big, "a")) != verilog_cache.key(_Params(changed, "a"))
            != verilog_cache.key(_Params(changed, "b")))
    assert verilog_cache.key(_Mode.FOLDED) != verilog_cache.key(_Mode.UNROLLED)
    scalars = [1, True, 1.0, "1", b"1", None, (1,), [1], {1: 1}, {"1": 1}, np.int64(1)]
    assert len({verilog_cache.key(v) for v in scalars}) == len(scalars)
    assert verilog_cache.key({"a": 1, "b": 2}) == verilog_cache.key({"b": 2, "a": 1})
    for bad in (_Opaque(big), {1, 2}, [1, _Opaque(changed)], {"k": object()}, range(3)):
        with pytest.raises(TypeError, match="cannot key on"):
            verilog_cache.key(bad)


def test_a_multiplier_is_keyed_by_its_decoders():
    from amaranth.hdl import signed
    from qfab.hw.multipliers import IntDecoder, Multiplier

    def key(a_bits, b_bits, frac=0):
        return verilog_cache.key(Multiplier(IntDecoder(signed(a_bits), frac_bits=frac),
                                            IntDecoder(signed(b_bits))))

    assert key(4, 4) == key(4, 4)
    assert len({key(4, 4), key(4, 5), key(5, 4), key(4, 4, frac=2)}) == 4
