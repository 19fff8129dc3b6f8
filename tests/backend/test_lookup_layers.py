"""Sigmoid and Tanh between layers, in hardware: an increasing table of one output code per
input code is the threshold block (one threshold a step of the table). An MLP with both,
quantized by onnxruntime's quantize_static, is exact against onnxruntime and co-simulated
bit-exactly in Verilator with the cycle model exact."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from qfab.cost_model.timing import cosim_differences

import qfab

sys.path.insert(0, str(Path(__file__).parents[1] / "frontend"))
from ort_quantizer import quantize, run_rows  # noqa: E402


def _mlp(tmp_path) -> Path:
    """16 -> 12 (Sigmoid) -> 12 (Tanh) -> 10, as QDQ (int8 activations and weights)."""
    rng = np.random.default_rng(2)
    weights = [numpy_helper.from_array(rng.normal(0, .4, shape).astype(np.float32), name)
               for name, shape in (("w1", (16, 12)), ("w2", (12, 12)), ("w3", (12, 10)))]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h1"]),
             helper.make_node("Sigmoid", ["h1"], ["a1"]),
             helper.make_node("MatMul", ["a1", "w2"], ["h2"]),
             helper.make_node("Tanh", ["h2"], ["a2"]),
             helper.make_node("MatMul", ["a2", "w3"], ["y"])]
    g = helper.make_graph(nodes, "sigmoid_tanh_mlp", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 16])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 10])], weights)
    return quantize(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]),
                    tmp_path / "mlp_qdq.onnx", rng.normal(0, 1, (32, 16)))


def test_sigmoid_and_tanh_between_layers(tmp_path):
    path = _mlp(tmp_path)
    x = np.random.default_rng(3).normal(0, 1.5, (4, 16)).astype(np.float32)
    want = run_rows(path, x)[0]
    assert np.array_equal(qfab.reference(path, x, requant="onnx")["y"], want)
    design = qfab.compile(path, soc=False)
    lookups = [n for n in design.graph.nodes if n.op == "lookup"]
    assert [n.attrs["fn"] for n in lookups] == ["Sigmoid", "Tanh"] and not design.plan.tail
    stages = [s.op for s in design.plan.stages]
    assert stages.count("threshold") == 2
    res = qfab.simulate(design, x)
    assert res.bit_exact, res.first_mismatch
    assert cosim_differences(design.plan, res) == []
    assert len(np.unique(res.hw_codes.argmax(1))) > 1
