"""A ReLU between float8 quantizers: Q(Relu(DQ(x))) must give +0 for every negative value.

The lowering carries the ReLU into the minifloat requant (attrs relu), and the reference
applies it in both requantization modes; both agree exactly with onnxruntime on inputs whose
pre-activations are largely negative.
"""

from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from qfab.numerics import MinifloatFormat
from qfab.sim.reference import Reference

from qfab.api import lower_model

TINY = Path(__file__).resolve().parents[2] / "examples" / "tiny"
FP8 = {TensorProto.FLOAT8E4M3FN: (ml_dtypes.float8_e4m3fn, MinifloatFormat.E4M3FN),
       TensorProto.FLOAT8E5M2: (ml_dtypes.float8_e5m2, MinifloatFormat.E5M2)}


def _mlp(elem: int, rng: np.random.Generator) -> onnx.ModelProto:
    """x -> Q/DQ -> Gemm -> Q/DQ -> Relu -> Q/DQ (another scale) -> Gemm -> Q/DQ -> y."""
    dtype = FP8[elem][0]
    nodes, inits = [], []

    def qdq(name: str, scale: float, out: str) -> None:
        inits.extend([numpy_helper.from_array(np.array(scale, np.float32), f"{name}_s"),
                      numpy_helper.from_array(np.zeros((), dtype), f"{name}_z")])
        nodes.append(helper.make_node("QuantizeLinear", [name, f"{name}_s", f"{name}_z"],
                                      [f"{name}_q"]))
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s",
                                                           f"{name}_z"], [out]))

    def weight(name: str, shape: tuple[int, int], scale: float) -> None:
        codes = rng.normal(0, 2, shape).astype(dtype)
        inits.extend([numpy_helper.from_array(codes, f"{name}_c"),
                      numpy_helper.from_array(np.array(scale, np.float32), f"{name}_s"),
                      numpy_helper.from_array(np.zeros((), dtype), f"{name}_z")])
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}_c", f"{name}_s",
                                                           f"{name}_z"], [name]))

    qdq("x", 0.125, "x_dq")
    weight("w1", (10, 8), 0.0625)
    nodes.append(helper.make_node("Gemm", ["x_dq", "w1"], ["h"], transB=1))
    qdq("h", 0.5, "h_dq")
    nodes.append(helper.make_node("Relu", ["h_dq"], ["r"]))
    qdq("r", 0.375, "r_dq")
    weight("w2", (3, 10), 0.03125)
    nodes.append(helper.make_node("Gemm", ["r_dq", "w2"], ["y"], transB=1))
    qdq("y", 0.25, "y_out")
    nodes.append(helper.make_node("Identity", ["y_out"], ["out"]))
    graph = helper.make_graph(
        nodes, "fp8_relu_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 9
    onnx.checker.check_model(model, full_check=True)
    return model


def _onnxruntime(model, name: str, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    # At higher levels onnxruntime deletes the Relu between float8 Q/DQ pairs (wrongly).
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {name: x[i:i + 1]})[0] for i in range(len(x))])


CASES = {
    "mlp_fp8_example": lambda rng: TINY / "mlp_fp8.onnx",
    "e4m3_relu_rescaled": lambda rng: _mlp(TensorProto.FLOAT8E4M3FN, rng),
    "e5m2_relu_rescaled": lambda rng: _mlp(TensorProto.FLOAT8E5M2, rng),
}


@pytest.mark.parametrize("case", list(CASES))
def test_relu_before_a_float8_quantizer_matches_onnxruntime(case):
    rng = np.random.default_rng(7)
    model = CASES[case](rng)
    graph = lower_model(model)
    relu_nodes = [n for n in graph.nodes if n.attrs.get("relu")]
    assert len(relu_nodes) == 1
    name = graph.inputs[0]
    shape = graph.tensors[name].shape
    x = (rng.normal(0, 2, (48,) + shape[1:])).astype(np.float32)
    want = _onnxruntime(model, name, x)
    for mode in ("onnx", "dyadic"):
        env = Reference(graph, requant=mode).run({name: x}, keep=True)
        got = env[graph.outputs[0]]
        np.testing.assert_array_equal(got, want, err_msg=mode)
        # the ReLU had work to do: many negative inputs, none left after it
        src = graph.tensors[relu_nodes[0].inputs[0]]
        assert (src.fmt.decode(env[src.name]) < 0).mean() > 0.2
        dst = graph.tensors[relu_nodes[0].outputs[0]]
        assert not (env[dst.name] & dst.fmt.sign_bit).any()  # not even a negative zero
