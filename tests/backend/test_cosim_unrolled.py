"""Fully unrolled layers (initiation interval 1): every product sees one weight, so the MAC
stages are adder graphs with no multiplier and no weight memory, and a run of them with the
requantizers between is one pipeline; co-simulated bit-exact in Verilator with the cycle
model exact."""

import pytest
from test_cosim_layers import _cosimulate, _quantized

import qfab


@pytest.mark.parametrize("head, activations", [("gap", "QUInt8"), ("depthwise", "QInt8")])
def test_unrolled_layers_are_adder_graphs(tmp_path, head, activations):
    pytest.importorskip("cocotb")
    design = qfab.compile(_quantized(tmp_path, head, activations), target_fps=1e8)
    kinds = [b.kind for s in design.plan.stages for b in s.blocks]
    assert "unrolled" in kinds and "mvu" not in kinds
    est = qfab.estimate(design)
    unrolled = [se for s, se in zip(design.plan.stages, est.stages, strict=True)
                if s.blocks[-1].kind in ("cmvm", "unrolled")]
    assert unrolled and all(se.dsp == se.bram == 0 for se in unrolled)
    _cosimulate(design)
