"""Softmax, Sigmoid and Tanh at a model's end (compiler/frontend/activations.py): the integer
tables against the float definitions they approximate, and against onnxruntime running the
same QDQ graph.

Sigmoid and Tanh are one table entry per input code, each the float64 function rounded to
the output format: equal to the float definition and to onnxruntime, code for code. Softmax
is integer arithmetic (exp tables, one division): within one output code of the float
definition, the share that differs measured here and printed.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from ort_quantizer import quantize, run_rows
from qonnx_graphs import Builder

import qfab
from qfab.errors import QfabError

ROWS = 2000
FLOAT = {"Sigmoid": lambda v: 1 / (1 + np.exp(-v)), "Tanh": np.tanh,
         "Softmax": lambda v: np.exp(v - v.max(-1, keepdims=True))
         / np.exp(v - v.max(-1, keepdims=True)).sum(-1, keepdims=True)}


def _act_model(op: str, in_scale: float, in_zp: int, out_q: tuple | None,
               cols: int = 10) -> onnx.ModelProto:
    """x -> QuantizeLinear -> DequantizeLinear -> op (-> QuantizeLinear -> DequantizeLinear
    with ``out_q`` = (scale, zero point), uint8)."""
    inits = [numpy_helper.from_array(np.array(in_scale, np.float32), "s"),
             numpy_helper.from_array(np.array(in_zp, np.uint8), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xf"]),
             helper.make_node(op, ["xf"], ["y" if out_q is None else "yf"])]
    if out_q is not None:
        inits += [numpy_helper.from_array(np.array(out_q[0], np.float32), "so"),
                  numpy_helper.from_array(np.array(out_q[1], np.uint8), "zo")]
        nodes += [helper.make_node("QuantizeLinear", ["yf", "so", "zo"], ["yq"]),
                  helper.make_node("DequantizeLinear", ["yq", "so", "zo"], ["y"])]
    g = helper.make_graph(nodes, op, [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, cols])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, cols])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def _codes(in_scale: float, in_zp: int, cols: int = 10) -> np.ndarray:
    """Rows of random input codes, every code of the range among them, as float inputs."""
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (ROWS, cols))
    codes.reshape(-1)[:256] = np.arange(256)
    return ((codes - in_zp) * np.float32(in_scale)).astype(np.float32)


def _float_codes(op: str, x: np.ndarray, in_scale: float, out_q: tuple | None):
    """The float64 definition of ``op`` on the quantized input, rounded (half to even) to the
    output codes and clamped to uint8; unquantized outputs: the float values."""
    s = float(np.float32(in_scale))
    real = FLOAT[op](np.round(x.astype(np.float64) / s) * s)
    if out_q is None:
        return real
    scale, zp = float(np.float32(out_q[0])), out_q[1]
    return np.clip(np.round(real / scale) + zp, 0, 255)


@pytest.mark.parametrize("op, in_scale, in_zp, out_q", [
    ("Sigmoid", 0.05, 128, (1 / 256, 0)),
    ("Sigmoid", 0.11, 90, (0.0037, 3)),
    ("Tanh", 0.03, 128, (1 / 128, 128)),
    ("Tanh", 0.02, 140, None),
])
def test_lookup_is_the_rounded_function(op, in_scale, in_zp, out_q):
    model = _act_model(op, in_scale, in_zp, out_q)
    x = _codes(in_scale, in_zp)
    got = qfab.reference(model, x)["y"].astype(np.float64)
    want = _float_codes(op, x, in_scale, out_q)
    if out_q is None:  # int16 codes of 2**-15, the largest clamped to 32767
        assert np.abs(got - want).max() <= 2.0**-15
        assert np.abs(got - np.clip(want, -1, 32767 / 32768)).max() <= 2.0**-16
        return
    lsb = float(np.float32(out_q[0]))
    assert np.array_equal(np.round(got / lsb) + out_q[1], want)
    assert np.array_equal(got, run_rows(model, x)[0])


@pytest.mark.parametrize("in_scale, in_zp, out_q, most_differing", [
    (0.1, 128, (1 / 256, 0), 0.001),
    (0.05, 100, (1 / 255, 0), 0.002),  # onnxruntime's quantizer's softmax scale
    (0.3, 128, (1 / 256, 0), 0.001),
])
def test_softmax_within_one_code(in_scale, in_zp, out_q, most_differing, record_property):
    model = _act_model("Softmax", in_scale, in_zp, out_q)
    x = _codes(in_scale, in_zp)
    got = qfab.reference(model, x)["y"].astype(np.float64)
    lsb = float(np.float32(out_q[0]))
    codes = np.round(got / lsb) + out_q[1]
    for want in (_float_codes("Softmax", x, in_scale, out_q),
                 np.round(run_rows(model, x)[0] / lsb) + out_q[1]):
        diff = np.abs(codes - want)
        share = float((diff > 0).mean())
        print(f"softmax s={in_scale} out={lsb:.6g}: {share:.4%} of outputs one code off")
        record_property("share_one_code_off", share)
        assert diff.max() <= 1 and share <= most_differing


def test_softmax_after_an_unquantized_dense():
    """hls4ml's form: the last Dense has no output quantizer. Its result is taken to
    fixed<16,6> (int16 codes of 2**-10); the exp tables step 2**-6 coarse and 2**-10 fine,
    the probabilities are int16 codes of 2**-15: within 2.5 codes of the float definition
    on the same fixed<16,6> logits."""
    rng = np.random.default_rng(3)
    b = Builder()
    w = b.quant(b.const(rng.normal(0, .5, (16, 6))), 2**-4, 6)
    y = b.node("Softmax", [b.node("MatMul", [b.quant("x", 2**-5, 8), w])])
    model = b.model((1, 16), y)
    graph = qfab.lower_model(model)
    node = next(n for n in graph.nodes if n.op == "softmax")
    assert node.attrs["shift"] == 4 and graph.tensors[node.inputs[0]].fmt.bits == 16
    x = rng.normal(0, 2, (ROWS, 16)).astype(np.float32)
    from qfab.sim.reference import Reference

    env = Reference(graph).run({"x": x}, keep=True)
    logits = env[node.inputs[0]].astype(np.float64) * 2**-10
    got = env[node.outputs[0]] * 2.0**-15
    assert np.abs(got - FLOAT["Softmax"](logits)).max() <= 2.5 * 2**-15
    assert np.array_equal(env[y], got.astype(np.float32))


@pytest.mark.parametrize("build, message", [
    (lambda b: b.node("Softmax", [b.quant("x", 0.1, 8)], axis=0), "axis 0"),
    (lambda b: b.node("Sigmoid", [b.quant("x", 2**-8, 12)]), "12-bit input"),
    (lambda b: b.node("Tanh", [b.node("MatMul", [b.quant("x", 0.1, 8),
                                                b.quant(b.const(np.ones((4, 4))), 1, 4)])]),
     "unquantized accumulator"),
])
def test_unsupported_forms_say_why(build, message):
    b = Builder()
    model = b.model((1, 4), build(b))
    with pytest.raises(QfabError, match=message) as e:
        qfab.lower_model(model)
    assert "\n" not in str(e.value)


def test_softmax_before_more_layers_is_a_plan_error():
    b = Builder()
    w = b.quant(b.const(np.ones((4, 4))), 1, 4)
    s = b.quant(b.node("Softmax", [b.quant("x", 0.1, 8)]), 1 / 256, 9, signed=0)
    y = b.node("MatMul", [s, w])
    with pytest.raises(QfabError, match="control core, after the accelerator"):
        qfab.compile(b.model((1, 4), y))


@pytest.mark.parametrize("op", ["Sigmoid", "LeakyRelu", "Softmax"])
@pytest.mark.parametrize("form", ["QOperator", "QDQ"])
def test_onnxruntime_quantized_activation(op, form, tmp_path):
    """A float ``op`` quantized by onnxruntime's quantize_static: QOperator gives its own
    kernels (QLinearSigmoid, QLinearLeakyRelu, QLinearSoftmax), QDQ the float op between
    quantizers. Sigmoid and LeakyRelu are equal to onnxruntime; Softmax within one code."""
    quantization = pytest.importorskip("onnxruntime.quantization")
    attrs = {"alpha": 0.1} if op == "LeakyRelu" else {}
    g = helper.make_graph([helper.make_node(op, ["x"], ["y"], **attrs)], op,
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])])
    rng = np.random.default_rng(0)
    path = quantize(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]),
                    tmp_path / f"{op}_{form}.onnx", rng.normal(0, 2, (16, 10)),
                    quant_format=getattr(quantization.QuantFormat, form))
    ops = {n.op_type for n in onnx.load(path).graph.node}
    assert (f"QLinear{op}" in ops) == (form == "QOperator")
    x = rng.normal(0, 2, (ROWS, 10)).astype(np.float32)
    # QDQ as written: onnxruntime's optimizer would fuse DQ -> Softmax -> Q into a
    # QLinearSoftmax that differs from its own float path on 10% of outputs (scale 1/255).
    want = run_rows(path, x, fused=form == "QOperator")[0]
    got = qfab.reference(path, x)["y"]
    if op != "Softmax":
        assert np.array_equal(got, want)
        return
    lsb = float(np.min(np.diff(np.unique(want))))  # the output scale
    off = np.round(np.abs(got - want) / lsb, 2)
    print(f"{form} softmax: {(off > 0).mean():.3%} of outputs one code off onnxruntime")
    assert off.max() <= 1 and (off > 0).mean() < 0.01


def test_qonnx_quant_after_sigmoid_is_the_table():
    """QKeras/Brevitas form: Sigmoid between QONNX Quants. The output Quant (rounding
    ROUND, full range) becomes the table's output format: one rounding of the float64
    sigmoid, not two."""
    b = Builder()
    y = b.quant(b.node("Sigmoid", [b.quant("x", 2**-4, 8)]), 2**-8, 8, signed=0)
    model = b.model((1, 16), y)
    graph = qfab.lower_model(model)
    assert [n.op for n in graph.nodes] == ["quantize", "lookup", "dequantize"]
    x = (np.arange(-128, 128, dtype=np.float32) * 2**-4).reshape(16, 16)
    want = np.clip(np.round(FLOAT["Sigmoid"](x.astype(np.float64)) * 2**8), 0, 255) * 2**-8
    assert np.array_equal(qfab.reference(model, x)[y], want.astype(np.float32))


@pytest.mark.parametrize("opset, axis, lowers", [(11, None, False), (11, 3, True),
                                                 (13, None, True), (13, 1, False)])
def test_softmax_axis_by_opset(opset, axis, lowers):
    """Softmax of a [1, 4, 1, 6] tensor: opset 11 flattens from its axis (default 1), so
    over 4 x 1 x 6 values unless the axis is the last; opset 13's default is the last axis.
    Only a softmax over the last axis lowers."""
    b = Builder()
    y = b.node("Softmax", [b.quant("x", 0.1, 8)], **({} if axis is None else {"axis": axis}))
    model = b.model((1, 4, 1, 6), y)
    model.opset_import[0].version = opset
    if lowers:
        assert any(n.op == "softmax" for n in qfab.lower_model(model).nodes)
    else:
        with pytest.raises(QfabError, match="softmax over axis 1"):
            qfab.lower_model(model)
