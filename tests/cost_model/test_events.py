"""The event-driven handshake run gives the clocked run's trace, cycle for cycle: every
stream's transfers and every MVU's steps, on the main chain and on skip paths, for designs
with every block kind (windows, pools, depthwise MACs, residual adds with their FIFOs,
width converters, thresholds, minifloat requantizers) at a narrow and a wide folding."""

from pathlib import Path

import pytest
from qfab.compiler.backend.plan import plan
from qfab.cost_model.events import run_events
from qfab.cost_model.handshake import run_chain
from qfab.cost_model.timing import _chains, plan_timing
from shared_models import SHARED

from qfab.api import lower_model

pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [ROOT / "examples" / "digits" / "digits_int8.onnx",
            ROOT / "examples" / "digits_resnet" / "digits_resnet_int8.onnx",
            ROOT / "examples" / "tiny" / "mlp_fp8.onnx",
            SHARED / "qonnx" / "TFC_2W2A.onnx"]
HEADS = ["gap", "avgpool_pads", "depthwise", "residual2", "projection", "downsample"]
FOLDINGS = [{"max_pe": 1, "max_simd": 2}, {"max_pe": 8, "max_simd": 16}]


def _both(hw, batch: int):
    beats = (hw.in_beats * batch, hw.out_beats * batch)
    traces = []
    for run in (run_chain, run_events):
        chain, _, skips, _ = _chains(hw.stages)
        traces.append(run(chain, *beats, skips=tuple(skips)))
    return traces


def _assert_same(hw, batch: int = 2) -> None:
    clocked, events = _both(hw, batch)
    assert events == clocked
    assert clocked.transfers[-1]


@pytest.mark.parametrize("folding", FOLDINGS, ids=["narrow", "wide"])
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_models(path, folding):
    _assert_same(plan(lower_model(path), **folding))


@pytest.mark.parametrize("path", EXAMPLES[:2], ids=lambda p: p.stem)
def test_pipelined_for_ecp5(path):
    # windows and width converters with registered ready (a gather's input runs on while
    # a word waits at its output)
    from qfab.compiler.backend.pipelining import for_family

    _assert_same(plan(lower_model(path), max_pe=4, max_simd=8,
                      pipelining=for_family("ecp5")))


@pytest.mark.parametrize("folding", FOLDINGS, ids=["narrow", "wide"])
@pytest.mark.parametrize("head", HEADS)
def test_layers(tmp_path, head, folding):
    from backend.test_cosim_layers import _quantized

    _assert_same(plan(lower_model(_quantized(tmp_path, head, "QInt8")), **folding))


def test_dense_design_gives_way_with_the_same_figures():
    """A design whose blocks change nearly every cycle is run clock by clock instead, and
    plan_timing's figures do not depend on which run made them."""
    hw = plan(lower_model(EXAMPLES[0]))
    chain, _, skips, _ = _chains(hw.stages)
    assert run_events(chain, hw.in_beats * 4, hw.out_beats * 4, give_way=0.0) is None
    clocked, _ = _both(hw, 4)
    assert plan_timing(hw, 4).completion_cycles == [
        c + 1 for c in clocked.transfers[-1][hw.out_beats - 1::hw.out_beats]]


def test_a_deadlock_is_named():
    """A chain that can never deliver its output beats stops with the beats left, at once
    (the clocked run would step to max_cycles)."""
    hw = plan(lower_model(EXAMPLES[3]))
    chain, _, skips, _ = _chains(hw.stages)
    with pytest.raises(RuntimeError, match="stopped for good"):
        run_events(chain, hw.in_beats, hw.out_beats + 1)
