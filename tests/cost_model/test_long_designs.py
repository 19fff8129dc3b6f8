"""A design whose two inferences take more cycles than any fixed cap would allow: compile
gives it the cycle model's lower bounds at once (marked as bounds), and the model itself,
asked for exact figures, runs it to the end (its cap comes from the design) and stays
above those bounds."""

import numpy as np
import onnx
from frontend.qonnx_graphs import Builder
from onnx import TensorProto, helper
from qfab.cost_model import timing

import qfab

MW, MH = 4096, 640  # at one PE and one SIMD lane: 2.6M MVU steps an inference


def _wide_layer() -> onnx.ModelProto:
    """One QONNX dense layer, 4-bit input and weights, ``MW`` inputs to ``MH`` outputs."""
    rng = np.random.default_rng(0)
    b = Builder()
    x = b.quant("x", 2**-3, 4)
    w = b.quant(b.const(rng.integers(-8, 8, (MW, MH)) * 2**-3), 2**-3, 4)
    y = b.quant(b.node("MatMul", [x, w]), 2.0, 8)
    b.nodes.append(helper.make_node("Identity", [y], ["y"]))
    g = helper.make_graph(b.nodes, "wide", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", MW])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)], b.inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                               helper.make_opsetid("qonnx.custom_op.general",
                                                                   1)])


def test_a_design_past_the_model_budget_compiles_with_bounds(tmp_path):
    path = tmp_path / "wide.onnx"
    onnx.save(_wide_layer(), path)
    design = qfab.compile(str(path), max_pe=1, max_simd=1)
    plan = design.plan
    assert timing.serial_cycles(plan, 2) > timing.MODEL_CYCLES
    assert design.manifest()["ii_exact"] is False
    assert design.ii_cycles == plan.ii_cycles >= MW * MH
    bounds = timing.plan_timing(plan, 2)
    assert not bounds.exact

    exact = timing.plan_timing(plan, 2, exact=True)
    assert exact.exact and exact.cycles > 5_000_000  # past the cap the model once had
    assert exact.ii_cycles >= bounds.ii_cycles
    assert exact.latency_cycles >= bounds.latency_cycles
    assert all(e >= b for e, b in zip(exact.completion_cycles, bounds.completion_cycles,
                                      strict=True))
    assert all(e.active_cycles >= b.active_cycles
               for e, b in zip(exact.stages, bounds.stages, strict=True))
