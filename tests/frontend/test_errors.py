"""User errors: a one-line QfabError naming the problem, and exit 2 from the CLI with no
traceback. And the IR verifier: it catches a broken graph."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
from frontend_harness import lowered
from onnx import TensorProto, helper, numpy_helper
from qfab.compiler.frontend.importer import import_onnx
from qfab.compiler.ir import Node, Tensor, verify
from qfab.numerics import IntFormat

from qfab.cli import main
from qfab.errors import QfabError

TFC = "/work/shared/models/qonnx/TFC_2W2A.onnx"


def _qdq_model(tail: list[onnx.NodeProto], *, x_shape=(1, 4), weight_input: bool = False,
               out: str = "y") -> onnx.ModelProto:
    """x -> Q -> DQ -> MatMul(DQ(w)) -> tail; ``weight_input`` makes w a graph input."""
    inits = [numpy_helper.from_array(np.float32(0.1), "s"),
             numpy_helper.from_array(np.int8(0), "zp"),
             numpy_helper.from_array(np.ones((4, 3), np.int8), "w")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))]
    if weight_input:
        inits.pop()
        inputs.append(helper.make_tensor_value_info("w", TensorProto.INT8, [4, 3]))
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"], name="q_in"),
             helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"], name="dq_in"),
             helper.make_node("DequantizeLinear", ["w", "s", "zp"], ["wd"], name="dq_w"),
             helper.make_node("MatMul", ["xd", "wd"], ["mm"], name="matmul"), *tail]
    graph = helper.make_graph(nodes, "errors", inputs,
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
                              initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def _one_line_error(model) -> str:
    with pytest.raises(QfabError) as info:
        lowered(model)
    message = str(info.value)
    assert "\n" not in message and message
    return message


def test_good_model_imports():
    tail = [helper.make_node("QuantizeLinear", ["mm", "s", "zp"], ["yq"], name="q_out"),
            helper.make_node("DequantizeLinear", ["yq", "s", "zp"], ["y"], name="dq_out")]
    graph = lowered(_qdq_model(tail))
    assert [n.op for n in graph.nodes] == ["quantize", "dense", "requant", "dequantize"]


def test_unsupported_op_names_op_node_and_supported_set():
    tail = [helper.make_node("Hardmax", ["mm"], ["y"], name="the_hardmax")]
    message = _one_line_error(_qdq_model(tail))
    assert "Hardmax" in message and "the_hardmax" in message
    assert "supported:" in message and "QLinearConv" in message and "Conv" in message


def test_dynamic_non_batch_dimension():
    model = _qdq_model([helper.make_node("Identity", ["mm"], ["y"])])
    dim = model.graph.input[0].type.tensor_type.shape.dim[1]
    dim.dim_param = "features"
    message = _one_line_error(model)
    assert "'x'" in message and "dynamic dimension 1" in message and "features" in message


def test_symbolic_batch_dimension_is_accepted():
    tail = [helper.make_node("QuantizeLinear", ["mm", "s", "zp"], ["yq"], name="q_out"),
            helper.make_node("DequantizeLinear", ["yq", "s", "zp"], ["y"], name="dq_out")]
    model = _qdq_model(tail)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    assert lowered(model).tensors["x"].shape == (1, 4)


def test_non_constant_weight():
    tail = [helper.make_node("Identity", ["mm"], ["y"])]
    message = _one_line_error(_qdq_model(tail, weight_input=True))
    assert "MatMul" in message and "matmul" in message and "constant" in message


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(b"\x08\x07this is not a protobuf\xff\xfe" * 10)
    message = _one_line_error(str(path))
    assert str(path) in message and "ONNX" in message


def test_missing_file(tmp_path):
    path = tmp_path / "missing.onnx"
    message = _one_line_error(str(path))
    assert str(path) in message and "not found" in message


@pytest.mark.parametrize("kind", ["unsupported", "corrupt", "missing", "dynamic"])
def test_cli_exit_2_one_line_no_traceback(kind, tmp_path, capsys):
    path = tmp_path / f"{kind}.onnx"
    if kind == "unsupported":
        onnx.save(_qdq_model([helper.make_node("Hardmax", ["mm"], ["y"], name="hm")]), path)
    elif kind == "dynamic":
        model = _qdq_model([helper.make_node("Identity", ["mm"], ["y"])])
        model.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "f"
        onnx.save(model, path)
    elif kind == "corrupt":
        path.write_bytes(b"garbage" * 50)
    for argv in (["inspect", str(path)],
                 ["reference", str(path), "--input", str(path), "--output",
                  str(tmp_path / "out.npz")]):
        assert main(argv) == 2
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1, captured.err
        assert lines[0].startswith(f"qfab {argv[0]}: error: ")
        assert "Traceback" not in captured.err and captured.out == ""
    assert not (tmp_path / "out.npz").exists()


# ---- the IR verifier ---------------------------------------------------------------------

def _breakages():
    def undefined_input(g):
        g.nodes[1].inputs[0] = "nowhere"

    def float_in_integer_op(g):
        g.tensors[g.nodes[1].outputs[0]].fmt = None

    def unknown_op(g):
        g.nodes[1].op = "hardmax"

    def defined_twice(g):
        g.nodes[2].outputs[0] = g.nodes[1].outputs[0]

    def used_before_defined(g):
        g.nodes[1], g.nodes[2] = g.nodes[2], g.nodes[1]

    def output_never_computed(g):
        g.outputs.append("phantom")

    def empty_shape(g):
        g.tensors[g.nodes[1].outputs[0]].shape = (1, 0)

    def quantize_to_float(g):
        out = g.nodes[0].outputs[0]
        g.tensors[out] = Tensor(out, g.tensors[out].shape, None)

    def missing_attribute(g):
        del g.nodes[1].attrs["x_zero_point"]

    def weight_does_not_fit(g):
        g.nodes[1].attrs["weight"] = g.nodes[1].attrs["weight"][:, :-1]

    def accumulator_retyped(g):
        g.tensors[g.nodes[1].outputs[0]].fmt = IntFormat(bits=8, signed=True)

    def threshold_changes_shape(g):
        g.tensors[g.nodes[2].outputs[0]].shape = (1, 63)

    def empty_clamp(g):
        g.nodes.insert(3, Node("clamp", "c", [g.nodes[2].outputs[0]], ["c_out"],
                               {"lo": 1, "hi": 0}))
        g.tensors["c_out"] = copy.deepcopy(g.tensors[g.nodes[2].outputs[0]])
        g.tensors["c_out"].name = "c_out"

    return [undefined_input, float_in_integer_op, unknown_op, defined_twice,
            used_before_defined, output_never_computed, empty_shape, quantize_to_float,
            missing_attribute, weight_does_not_fit, accumulator_retyped,
            threshold_changes_shape, empty_clamp]


@pytest.fixture(scope="module")
def tfc_graph():
    return lowered(TFC)


def test_verifier_accepts_lowered_graph(tfc_graph):
    verify(tfc_graph)


EXPECTED = {
    "undefined_input": "used before it is defined", "float_in_integer_op": "float tensor",
    "unknown_op": "unknown op", "defined_twice": "defined twice",
    "used_before_defined": "used before it is defined",
    "output_never_computed": "never computed", "empty_shape": "shape",
    "quantize_to_float": "quantize types", "missing_attribute": "missing attributes",
    "weight_does_not_fit": "weight", "accumulator_retyped": "not an Acc",
    "threshold_changes_shape": "shape", "empty_clamp": "empty output range",
}


@pytest.mark.parametrize("breakage", _breakages(), ids=lambda f: f.__name__)
def test_verifier_catches_broken_graph(tfc_graph, breakage):
    g = copy.deepcopy(tfc_graph)
    breakage(g)
    with pytest.raises(AssertionError, match=EXPECTED[breakage.__name__]):
        verify(g)


def test_verifier_runs_on_imported_graph_too():
    g = import_onnx(TFC)
    verify(g)
    g.nodes[1].outputs.append("extra")  # an output with no tensor
    with pytest.raises(AssertionError, match="has no tensor"):
        verify(g)
    g2 = import_onnx(TFC)
    g2.tensors[g2.nodes[0].outputs[0]].fmt = IntFormat(bits=4, signed=True)
    verify(g2)  # a valid retyping is not an error


# ---- API input errors --------------------------------------------------------------------

@pytest.mark.parametrize("problem", ["missing", "shape", "dtype", "mode", "many"])
def test_reference_api_input_errors(problem):
    from qfab.api import reference

    x = np.zeros((2, 1, 28, 28), np.float32)
    model = TFC
    kwargs = {}
    if problem == "missing":
        inputs = {"not_an_input": x}
    elif problem == "shape":
        inputs = np.zeros((2, 1, 28, 27), np.float32)
    elif problem == "dtype":
        inputs = np.array([["a"] * 28] * 28)[None, None]
    elif problem == "mode":
        inputs, kwargs = x, {"requant": "float"}
    else:
        model, inputs = "/work/shared/models/qdq/ort_qdq_convs.onnx", np.zeros((1, 1, 5, 5))
    with pytest.raises(QfabError) as info:
        reference(model, inputs, **kwargs)
    assert "\n" not in str(info.value)
