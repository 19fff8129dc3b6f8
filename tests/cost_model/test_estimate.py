"""The cost model without Yosys: DSP and memory mapping rules, plan totals, the CLI, and cycle
estimates against co-simulation."""

import json

import numpy as np
import onnx
import pytest
from amaranth.hdl import signed, unsigned
from onnx import TensorProto, helper, numpy_helper
from qfab.cost_model.dsp import multiplier_dsps
from qfab.cost_model.estimate import estimate
from qfab.cost_model.memory import bram_blocks, memory_cost
from qfab.cost_model.quantize import QuantSpec, quantize_model

import qfab
from qfab.cli import main

TFC = "/work/shared/models/qonnx/TFC_2W2A.onnx"
DIGITS = "examples/digits/digits_int8.onnx"


@pytest.mark.parametrize("a, b, family, dsps", [
    (signed(4), signed(4), "xilinx7", 0),     # an 8-bit product stays in LUTs (Y < 9)
    (signed(5), signed(4), "xilinx7", 1),
    (signed(25), signed(18), "xilinx7", 1),
    (signed(26), signed(18), "xilinx7", 2),
    (unsigned(25), signed(18), "xilinx7", 2),  # signed-only DSP48: one more bit
    (signed(2), signed(2), "ecp5", 1),
    (signed(19), signed(18), "ecp5", 1),      # the 1-bit rest is below the 2-bit minimum
    (signed(20), signed(18), "ecp5", 2),
    (signed(17), unsigned(15), "ice40", 1),
    (signed(5), signed(5), "ice40", 0),       # Y < 11
    (signed(6), signed(5), "ice40", 1),
    (signed(1), signed(8), "ice40", 0),
])
def test_dsp_rule(a, b, family, dsps):
    assert multiplier_dsps(a, b, family) == dsps


def test_memory_choice():
    # synth_xilinx: a ROM bit in LUT6 logic costs 1/64 against 129 a RAMB18
    assert memory_cost(256, 32, "xilinx7", rom=True).style == "logic"
    assert memory_cost(512, 64, "xilinx7", rom=True).bram == 2
    # memory_libmap: ROM logic costs 1/16 a bit against 128 a DP16KD
    assert memory_cost(256, 8, "ecp5", rom=True).style == "logic"
    assert memory_cost(256, 32, "ecp5", rom=True) .bram == 1
    lutram = memory_cost(16, 16, "xilinx7", rom=False)
    assert (lutram.style, lutram.lut) == ("lutram", 12)  # three RAM32M
    assert memory_cost(16, 16, "ice40", rom=False).style in ("logic", "bram")
    assert bram_blocks(1024, 18, "xilinx7") == 1 and bram_blocks(1024, 19, "xilinx7") == 2
    assert bram_blocks(512, 16, "ice40") == 2
    # TFC_2W2A's first weight ROM, 1568 x 64 on iCE40: seven SB_RAM40_4K (256 x 16) deep and
    # four wide, and a 7:1 read multiplexer of LUT4s a bit of the word
    deep = memory_cost(1568, 64, "ice40", rom=True)
    assert (deep.style, deep.bram, deep.lut, deep.ff) == ("bram", 28, 64 * 6, 0)
    assert memory_cost(512, 64, "ice40", rom=True).lut == 0  # 512 x 8 blocks: one deep


@pytest.mark.parametrize("model", [TFC, DIGITS])
def test_plan_totals(model):
    design = qfab.compile(model)
    for board in ("pynq-z2", "ulx3s-85f", "icebreaker"):
        est = estimate(design, board)
        for key in ("lut", "ff", "dsp", "bram"):
            assert getattr(est, key) == sum(getattr(s, key) for s in est.stages)
        # the handshake model's spacing, never under the slowest stage
        assert est.ii_cycles == design.ii_cycles >= max(s.cycles for s in design.plan.stages)
        assert est.throughput == pytest.approx(est.clock_hz / est.ii_cycles)
        assert est.latency_cycles < est.cycles
        assert est.fits == (est.lut <= qfab.cost_model.load_board(board).lut
                            and est.dsp <= qfab.cost_model.load_board(board).dsp
                            and est.ff <= qfab.cost_model.load_board(board).ff
                            and est.bram <= qfab.cost_model.load_board(board).bram)
    assert qfab.estimate(design).board == "pynq-z2"


def test_estimate_cli_json(capsys):
    assert main(["estimate", TFC, "--board", "ulx3s-85f", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)["estimate"]
    assert {"lut", "ff", "dsp", "bram", "bram_unit", "cycles", "fits", "stages"} <= set(out)
    assert out["bram_unit"] == "DP16KD" and out["family"] == "ecp5"
    assert main(["estimate", TFC]) == 0
    assert "| LUT |" in capsys.readouterr().out
    assert main(["estimate", TFC, "--board", "zedboard"]) == 2
    assert "unknown board" in capsys.readouterr().err


def test_synth_cli_needs_a_compiled_folder(tmp_path, capsys):
    assert main(["synth", str(tmp_path)]) == 2
    assert "accelerator.v" in capsys.readouterr().err


def _tiny_mlp() -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    w1 = rng.normal(0, 0.5, (16, 24)).astype(np.float32)
    w2 = rng.normal(0, 0.5, (24, 4)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
             helper.make_node("Relu", ["h"], ["hr"], name="relu1"),
             helper.make_node("MatMul", ["hr", "w2"], ["y"], name="fc2")]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _tiny_cnn() -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    w1 = rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32)
    w2 = rng.normal(0, 0.5, (8, 4, 3, 3)).astype(np.float32)
    w3 = rng.normal(0, 0.3, (4, 8 * 2 * 2)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1],
                              strides=[2, 2]),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("MaxPool", ["r2"], ["p"], name="pool", kernel_shape=[2, 2],
                              strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "w3"], ["y"], name="fc", transB=1)]
    graph = helper.make_graph(
        nodes, "tiny_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(w, n) for w, n in ((w1, "w1"), (w2, "w2"), (w3, "w3"))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("make, shape, folding", [
    (_tiny_mlp, (3, 16), dict(max_pe=2, max_simd=4)),
    (_tiny_cnn, (2, 1, 8, 8), dict(max_pe=2, max_simd=4)),
])
def test_cycles_equal_cosimulation(make, shape, folding):
    """Latency and total cycles of a batch equal the co-simulation's: a dense chain, and a
    CNN whose stride-2 window and folded MVU push back on the stage before them."""
    pytest.importorskip("cocotb")
    x = np.random.default_rng(2).uniform(0, 1, shape).astype(np.float32)
    model = quantize_model(make(), QuantSpec("int", 4), QuantSpec("int", 4), x)
    design = qfab.compile(model, **folding)
    from qfab.cost_model.timing import plan_timing

    res = qfab.simulate(design, x)
    assert res.bit_exact
    timing = plan_timing(design.plan, batch=shape[0])
    assert (timing.latency_cycles, timing.cycles) == (res.latency_cycles, res.cycles)
    assert estimate(design).latency_cycles == res.latency_cycles
