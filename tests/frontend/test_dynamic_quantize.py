"""DynamicQuantizeLinear against onnxruntime, exactly: the op alone on random float inputs of
several shapes (mixed signs, all positive, all negative, constant, all zero, rounding ties)
and its function body (the ``_expanded`` form, which onnxruntime runs op by op); the integer
layers after it with its run-time zero point, and a MatMul quantized by quantize_dynamic; the
hardware planner's refusal and ``qfab inspect``."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from frontend_harness import lowered, mismatch
from onnx import TensorProto, helper, numpy_helper
from ort_oracle import int8_products_saturate, session, weight_range

from qfab.api import reference
from qfab.errors import QfabError

ort = pytest.importorskip("onnxruntime")

OUTPUTS = (("y", TensorProto.UINT8), ("y_scale", TensorProto.FLOAT),
           ("y_zero_point", TensorProto.UINT8))


def _model(shape) -> onnx.ModelProto:
    node = helper.make_node("DynamicQuantizeLinear", ["x"], [n for n, _ in OUTPUTS], name="dql")
    graph = helper.make_graph([node], "dql", [helper.make_tensor_value_info("x", 1, shape)],
                              [helper.make_tensor_value_info(n, t, None) for n, t in OUTPUTS])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])


def _inputs(kind: str, shape, rng) -> np.ndarray:
    x = {"mixed": lambda: rng.normal(0, 3, shape),
         "positive": lambda: rng.uniform(0.01, 7, shape),
         "negative": lambda: -rng.uniform(0.5, 40, shape),
         "constant": lambda: np.full(shape, 2.7),
         "negative_constant": lambda: np.full(shape, -0.3),
         "zero": lambda: np.zeros(shape),
         "ties": lambda: rng.integers(-255, 256, shape) / 2.0}[kind]()
    return x.astype(np.float32)


def _compare(model: onnx.ModelProto, x: np.ndarray, names=OUTPUTS) -> None:
    expected = session(model).run([n for n, _ in names], {"x": x})
    for mode in ("onnx", "dyadic"):
        got = reference(lowered(model), {"x": x}, requant=mode)
        for (name, et), exp in zip(names, expected, strict=True):
            diff = mismatch(got[name], exp, et)
            assert diff is None, f"{name} ({mode}): {diff}"


@pytest.mark.parametrize("shape", [(6,), (3, 4), (2, 3, 5, 5)])
@pytest.mark.parametrize("kind", ["mixed", "positive", "negative", "constant",
                                  "negative_constant", "zero", "ties"])
def test_equals_onnxruntime(shape, kind):
    rng = np.random.default_rng(hash((shape, kind)) % 2**32)
    _compare(_model(shape), _inputs(kind, shape, rng))


def _expanded(shape) -> onnx.ModelProto:
    """The op's function body, expanded as the onnx wheel's ``_expanded`` node cases are."""
    from onnx.backend.test.case.node import function_expand_helper

    model = _model(shape)
    schema = onnx.defs.get_schema("DynamicQuantizeLinear", 11)
    fn = onnx.FunctionProto()
    fn.ParseFromString(schema.function_body.SerializeToString())
    nodes = function_expand_helper(model.graph.node[0], fn, "dql_")
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


@pytest.mark.parametrize("shape", [(6,), (3, 4), (2, 3, 5, 5)])
@pytest.mark.parametrize("kind", ["mixed", "positive", "negative", "constant", "ties"])
def test_function_body_equals_onnxruntime(shape, kind):
    rng = np.random.default_rng(hash((shape, kind)) % 2**32)
    model = _expanded(shape)
    assert "DynamicQuantizeLinear" not in {n.op_type for n in model.graph.node}
    _compare(model, _inputs(kind, shape, rng))


def test_hardware_planner_refuses_it_naming_the_node():
    from qfab.compiler.backend.plan import plan

    from qfab.api import lower_model

    model = _model((1, 8))
    del model.graph.output[1:]  # one output, so only the dynamic scale stands in the way
    with pytest.raises(QfabError) as e:
        plan(lower_model(model))
    assert "'dql'" in str(e.value) and "DynamicQuantizeLinear" in str(e.value)
    assert "\n" not in str(e.value)


def test_inspect_shows_the_dynamic_quantizer():
    from qfab.compiler.summary import summarize

    from qfab.api import lower_model
    from qfab.commands.inspect import table

    summary = summarize(lower_model(_expanded((3, 4))))
    (layer,) = summary["layers"]
    assert layer["op"] == "dynamic_quantize" and "min/max" in layer["dynamic"]
    assert [t["format"] for t in layer["outputs"]] == ["uint8", "float32", "uint8"]
    assert "dynamic_quantize" in "\n".join(table(summary))


def _integer_layer(op: str, shape, rng) -> onnx.ModelProto:
    """x -> DynamicQuantizeLinear -> MatMulInteger/ConvInteger with the computed zero point
    (the layer onnxruntime's quantize_dynamic writes), int32 output; the weights span the
    codes onnxruntime multiplies exactly on this CPU."""
    wshape = (shape[-1], 5) if op == "MatMulInteger" else (4, shape[1], 3, 3)
    w = numpy_helper.from_array(rng.integers(*weight_range(), wshape).astype(np.int8), "w")
    wzp = numpy_helper.from_array(np.int8(3), "wzp")
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "s", "z"], name="dql"),
             helper.make_node(op, ["q", "w", "z", "wzp"], ["acc"], name="layer",
                              **({} if op == "MatMulInteger" else {"pads": [1, 0, 1, 2]}))]
    graph = helper.make_graph(nodes, "dyn", [helper.make_tensor_value_info("x", 1, shape)],
                              [helper.make_tensor_value_info("acc", TensorProto.INT32, None)],
                              [w, wzp])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])


@pytest.mark.parametrize("op,shape", [("MatMulInteger", (3, 16)), ("MatMulInteger", (2, 4, 7)),
                                      ("ConvInteger", (1, 3, 6, 6))])
@pytest.mark.parametrize("kind", ["mixed", "positive", "negative"])
def test_integer_layer_with_the_computed_zero_point(op, shape, kind):
    rng = np.random.default_rng(7)
    _compare(_integer_layer(op, shape, rng), _inputs(kind, shape, rng),
             names=(("acc", TensorProto.INT32),))


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("kind", ["mixed", "positive", "negative"])
def test_quantize_dynamic_matmul_equals_onnxruntime(tmp_path, per_channel, kind):
    """A float MatMul quantized by onnxruntime's quantize_dynamic: DynamicQuantizeLinear,
    MatMulInteger with the computed zero point, Cast, Mul by x_scale * w_scale."""
    quantization = pytest.importorskip("onnxruntime.quantization")
    rng = np.random.default_rng(11)
    w = numpy_helper.from_array(rng.normal(0, 0.5, (12, 6)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "mm",
                              [helper.make_tensor_value_info("x", 1, [4, 12])],
                              [helper.make_tensor_value_info("y", 1, [4, 6])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              tmp_path / "f.onnx")
    quantization.quantize_dynamic(tmp_path / "f.onnx", tmp_path / "q.onnx",
                                  per_channel=per_channel,
                                  reduce_range=int8_products_saturate())
    model = onnx.load(tmp_path / "q.onnx")
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= {n.op_type for n in model.graph.node}
    _compare(model, _inputs(kind, (4, 12), rng), names=(("y", TensorProto.FLOAT),))
