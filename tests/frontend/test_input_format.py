"""--input-format: a float graph input no quantizer reads (Keras/hls4ml exports) taken as a
fixed-point, integer or minifloat format, checked against the same model with the quantizer
written out as a QONNX Quant (whose rounding qonnx documents), and against ap_fixed's wrap."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from qfab.compiler.frontend.input_format import parse_input_format
from qfab.numerics import IntFormat, MinifloatFormat
from qfab.sim.reference import Reference
from qonnx_graphs import Builder

import qfab
from qfab.cli import main
from qfab.errors import QfabError


def _mlp(input_quant: tuple | None = None) -> onnx.ModelProto:
    """hls4ml's pattern: a float input straight into a QKeras Dense (Quant weights, a
    quantized_relu), then a Dense with no output quantizer. With ``input_quant`` = (scale,
    bits, rounding), the input's quantizer written as a QONNX Quant instead."""
    rng = np.random.default_rng(1)
    b = Builder()
    x = "x"
    if input_quant is not None:
        scale, bits, rounding = input_quant
        x = b.quant(x, scale, bits, rounding=rounding)
    w1 = b.quant(b.const(rng.normal(0, .4, (16, 12))), 2**-4, 6)
    h = b.node("Add", [b.node("MatMul", [x, w1]), b.quant(b.const(rng.normal(0, .2, 12)),
                                                          2**-4, 6)])
    r = b.quant(b.node("Relu", [h]), 2**-3, 6, signed=0)
    w2 = b.quant(b.const(rng.normal(0, .4, (12, 5))), 2**-4, 6)
    b.nodes.append(helper.make_node("MatMul", [r, w2], ["y"]))
    g = helper.make_graph(b.nodes, "mlp", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 16])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)], b.inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                               helper.make_opsetid("qonnx.custom_op.general",
                                                                   1)])


@pytest.mark.parametrize("text, fmt, scale, rounding, saturate", [
    ("fixed<16,6>", IntFormat(16, True), 2**-10, "floor", False),
    ("ap_fixed<8,3,AP_RND_CONV,AP_SAT>", IntFormat(8, True), 2**-5, "half_even", True),
    ("ap_ufixed<10,2,AP_RND>", IntFormat(10, False), 2**-8, "half_up", False),
    ("int8:0.25", IntFormat(8, True), 0.25, "half_even", True),
    ("uint8", IntFormat(8, False), 1.0, "half_even", True),
    ("E4M3", MinifloatFormat.E4M3FN, 1.0, "half_even", True),
])
def test_forms(text, fmt, scale, rounding, saturate):
    f = parse_input_format(text)
    assert (f.fmt, f.scale, f.rounding, f.saturate) == (fmt, scale, rounding, saturate)


@pytest.mark.parametrize("text", ["fixed<16", "fixed<40,6>", "int8:-1", "float", "E9M9",
                                  "fixed<8,3,AP_RND_ZERO>"])
def test_bad_forms_fail_in_one_line(text):
    with pytest.raises(QfabError) as e:
        parse_input_format(text)
    assert "\n" not in str(e.value) and "--input-format" in str(e.value)


@pytest.mark.parametrize("text, quant", [
    ("fixed<16,6,AP_TRN,AP_SAT>", (2**-10, 16, "FLOOR")),
    ("ap_fixed<8,4,AP_RND_CONV,AP_SAT>", (2**-4, 8, "ROUND")),
    ("int8:0.05", (0.05, 8, "ROUND")),
])
def test_same_as_the_quantizer_written_out(text, quant):
    """The reference with --input-format equals the model whose input is quantized by an
    explicit Quant of that format, code for code, over and beyond the format's range."""
    x = np.random.default_rng(2).normal(0, 3, (64, 16)).astype(np.float32)
    x[0, :4] = [40.0, -40.0, 15.99, -16.5]  # saturate beyond the range
    ours = qfab.reference(_mlp(), x, input_format=text)["y"]
    explicit = qfab.reference(_mlp(quant), x)["y"]
    assert np.array_equal(ours, explicit)


def test_ap_fixed_wraps_by_default():
    """ap_fixed<16,6>'s AP_WRAP keeps the low 16 bits of floor(x * 2**10)."""
    graph = qfab.lower_model(_mlp(), input_format="fixed<16,6>")
    q = graph.nodes[0]
    x = np.array([[40.0, -40.0, 31.999, -32.0, 0.0009, -0.0009] + [0.0] * 10], np.float32)
    codes = Reference(graph).run({"x": x}, keep=True)[q.outputs[0]][0, :6]
    exact = np.floor(x[0, :6].astype(np.float64) * 1024).astype(np.int64)
    assert np.array_equal(codes, (exact + 2**15) % 2**16 - 2**15)
    assert codes[0] == 40 * 1024 - 2**16 and codes[4] == 0 and codes[5] == -1


def test_without_the_flag_the_error_names_it(tmp_path, capsys):
    path = tmp_path / "mlp.onnx"
    onnx.save(_mlp(), path)
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--input-format" in err and "fixed<16,6>" in err
    assert main(["inspect", str(path), "--input-format", "fixed<16,6>"]) == 0
    assert "int16" in capsys.readouterr().out
