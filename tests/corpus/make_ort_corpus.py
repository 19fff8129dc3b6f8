"""Writes the onnxruntime and hls4ml corpus models (tests/corpus/onnxruntime/, hls4ml/).

onnxruntime/: float models made with onnx.helper, quantized by onnxruntime's own
``quantize_static`` (QDQ, uint8 activations, int8 weights, ``reduce_range`` so the u8s8
kernels cannot saturate on a CPU without VNNI), calibrated on random inputs of a fixed seed.
The quantizer gives Softmax a fixed output scale of 1/255, Sigmoid a calibrated one, and
leaves Tanh's output float; the Softmax model is also written as QOperator (QLinearMatMul,
QLinearSoftmax). The Sigmoid model has two outputs, the logits (which the Sigmoid
reads too) and the probabilities, as multi-label classifiers export them.

hls4ml/: QONNX models in the form QKeras layers export (qonnx's ``from_keras``): a float
input with no quantizer (hls4ml gives it ``ap_fixed<16,6>``: qfab's ``--input-format``),
Quant on weights and biases, a quantized_relu, and a last Dense with no output quantizer
before Softmax. Written with onnx.helper: QKeras does not install here.

    .venv/bin/python tests/corpus/make_ort_corpus.py      # rewrites both folders
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).parents[1] / "frontend"))
from ort_quantizer import quantize  # noqa: E402
from qonnx_graphs import Builder  # noqa: E402

ROOT = Path(__file__).parent
INPUTS = 16


def _float_mlp(rng: np.random.Generator, head: str, logits_out: bool) -> onnx.ModelProto:
    """16 -> 24 (ReLU) -> 10 -> ``head``, as a trained classifier's graph has it; with
    ``logits_out`` the logits are a second graph output, read by ``head`` too."""
    w1 = numpy_helper.from_array(rng.normal(0, .4, (INPUTS, 24)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.normal(0, .1, 24).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.normal(0, .4, (24, 10)).astype(np.float32), "w2")
    b2 = numpy_helper.from_array(rng.normal(0, .1, 10).astype(np.float32), "b2")
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["logits"]),
             helper.make_node(head, ["logits"], ["y"])]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 10])
               for name in (["logits"] if logits_out else []) + ["y"]]
    g = helper.make_graph(nodes, f"mlp_{head.lower()}",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, INPUTS])],
                          outputs, [w1, b1, w2, b2])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def ort_models() -> None:
    from onnxruntime.quantization import QuantFormat, QuantType

    out = ROOT / "onnxruntime"
    out.mkdir(exist_ok=True)
    for seed, head in enumerate(("Softmax", "Sigmoid", "Tanh")):
        model = _float_mlp(np.random.default_rng(seed), head, head == "Sigmoid")
        calibration = np.random.default_rng(seed).normal(0, 1, (64, INPUTS))
        quantize(model, out / f"mlp_{head.lower()}_qdq.onnx", calibration,
                 activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        if head == "Softmax":  # the same as onnxruntime's own QLinear kernels
            quantize(model, out / "mlp_softmax_qop.onnx", calibration,
                     quant_format=QuantFormat.QOperator, activation_type=QuantType.QUInt8,
                     weight_type=QuantType.QInt8)


def _conv_relu(rng: np.random.Generator, inits: list, nodes: list, x: str,
               size: tuple[int, int, int], name: str) -> str:
    """Conv (``size``: in and out channels, a square kernel, same padding) and ReLU on
    ``x``, its weights and bias added to ``inits``; the ReLU's output is ``name``."""
    cin, cout, k = size
    inits.append(numpy_helper.from_array(
        rng.normal(0, .6 / np.sqrt(cin * k * k), (cout, cin, k, k)).astype(np.float32),
        f"{name}_w"))
    inits.append(numpy_helper.from_array(rng.normal(0, .1, cout).astype(np.float32),
                                         f"{name}_b"))
    nodes.append(helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [f"{name}_c"],
                                  pads=[k // 2] * 4))
    nodes.append(helper.make_node("Relu", [f"{name}_c"], [name]))
    return name


def _float_branches(rng: np.random.Generator) -> onnx.ModelProto:
    """A small CNN whose graph is no chain: a stem conv whose output is a graph output and
    feeds a residual block holding another (nested), two branches (1x1 and 3x3 convs)
    concatenated along channels, global average pooling and a Gemm to ``logits``."""
    inits, nodes = [], []

    def conv(x: str, cin: int, cout: int, k: int, name: str) -> str:
        return _conv_relu(rng, inits, nodes, x, (cin, cout, k), name)

    def add(a: str, b: str, name: str) -> str:
        nodes.append(helper.make_node("Add", [a, b], [f"{name}_sum"]))
        nodes.append(helper.make_node("Relu", [f"{name}_sum"], [name]))
        return name

    stem = conv("x", 3, 8, 3, "stem")
    a1 = conv(stem, 8, 8, 3, "a1")
    inner = add(conv(a1, 8, 8, 3, "a2"), a1, "inner")
    outer = add(inner, stem, "outer")
    nodes.append(helper.make_node("Concat", [conv(outer, 8, 4, 1, "b1"),
                                             conv(outer, 8, 4, 3, "b2")], ["cat"], axis=1))
    nodes.append(helper.make_node("GlobalAveragePool", ["cat"], ["pool"]))
    nodes.append(helper.make_node("Flatten", ["pool"], ["flat"]))
    inits.append(numpy_helper.from_array(rng.normal(0, .5, (8, 10)).astype(np.float32), "fc_w"))
    inits.append(numpy_helper.from_array(rng.normal(0, .1, 10).astype(np.float32), "fc_b"))
    nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"]))
    g = helper.make_graph(nodes, "cnn_branches",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10]),
                           helper.make_tensor_value_info("stem", TensorProto.FLOAT,
                                                         [1, 8, 8, 8])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def _float_inception(rng: np.random.Generator) -> onnx.ModelProto:
    """An Inception-style block: a stem conv read by three branches (1x1; 3x3; 1x1 then
    3x3) concatenated along channels, global average pooling, and two Gemm heads on the
    pooled features, each a graph output (``logits``, ``aux``)."""
    inits, nodes = [], []

    def conv(x: str, cin: int, cout: int, k: int, name: str) -> str:
        return _conv_relu(rng, inits, nodes, x, (cin, cout, k), name)

    stem = conv("x", 3, 8, 3, "stem")
    branches = [conv(stem, 8, 4, 1, "b1"), conv(stem, 8, 4, 3, "b2"),
                conv(conv(stem, 8, 4, 1, "b3a"), 4, 4, 3, "b3")]
    nodes.append(helper.make_node("Concat", branches, ["cat"], axis=1))
    nodes.append(helper.make_node("GlobalAveragePool", ["cat"], ["pool"]))
    nodes.append(helper.make_node("Flatten", ["pool"], ["flat"]))
    for head, n in (("logits", 10), ("aux", 3)):
        inits.append(numpy_helper.from_array(rng.normal(0, .5, (12, n)).astype(np.float32),
                                             f"{head}_w"))
        inits.append(numpy_helper.from_array(rng.normal(0, .1, n).astype(np.float32),
                                             f"{head}_b"))
        nodes.append(helper.make_node("Gemm", ["flat", f"{head}_w", f"{head}_b"], [head]))
    g = helper.make_graph(nodes, "cnn_inception",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info(h, TensorProto.FLOAT, [1, n])
                           for h, n in (("logits", 10), ("aux", 3))], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def ort_branch_models() -> None:
    from onnxruntime.quantization import QuantType

    rng = np.random.default_rng(11)
    model = _float_branches(rng)
    quantize(model, ROOT / "onnxruntime" / "cnn_branches_qdq.onnx",
             rng.normal(0, 1, (32, 3, 8, 8)), activation_type=QuantType.QUInt8,
             weight_type=QuantType.QInt8)
    rng = np.random.default_rng(12)
    quantize(_float_inception(rng), ROOT / "onnxruntime" / "cnn_inception_qdq.onnx",
             rng.normal(0, 1, (32, 3, 8, 8)), activation_type=QuantType.QUInt8,
             weight_type=QuantType.QInt8)


def hls4ml_models() -> None:
    rng = np.random.default_rng(7)
    b = Builder()
    w1 = b.quant(b.const(rng.normal(0, .4, (INPUTS, 24))), 2**-4, 6)
    h = b.node("Add", [b.node("MatMul", ["x", w1]),
                       b.quant(b.const(rng.normal(0, .2, 24)), 2**-4, 6)])
    r = b.quant(b.node("Relu", [h]), 2**-3, 6, signed=0)
    w2 = b.quant(b.const(rng.normal(0, .4, (24, 5))), 2**-4, 6)
    logits = b.node("Add", [b.node("MatMul", [r, w2]),
                            b.quant(b.const(rng.normal(0, .2, 5)), 2**-4, 6)])
    b.nodes.append(helper.make_node("Softmax", [logits], ["y"], axis=-1))
    g = helper.make_graph(b.nodes, "dense_softmax", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", INPUTS])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, ["N", 5])], b.inits)
    model = helper.make_model(g, opset_imports=[
        helper.make_opsetid("", 13), helper.make_opsetid("qonnx.custom_op.general", 1)])
    out = ROOT / "hls4ml"
    out.mkdir(exist_ok=True)
    onnx.save(model, out / "dense_softmax_qonnx.onnx")


if __name__ == "__main__":
    ort_models()
    ort_branch_models()
    hls4ml_models()
