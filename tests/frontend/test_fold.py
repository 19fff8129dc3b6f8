"""Constant folding in NumPy (compiler/frontend/fold.py) gives what onnx's ReferenceEvaluator
gives, dtype and all, and steps aside where it would not."""

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator
from qfab.compiler.frontend.fold import fold

RNG = np.random.default_rng(3)
X = RNG.normal(size=(2, 3, 4)).astype(np.float32)

CASES = [
    ("Transpose", {"perm": [2, 0, 1]}, [X], 13),
    ("Transpose", {}, [X], 13),
    ("Unsqueeze", {}, [X, np.array([0, -1], np.int64)], 13),
    ("Unsqueeze", {"axes": [1, -1]}, [X], 11),
    ("Concat", {"axis": -1}, [X, X[..., :2]], 13),
    ("Gather", {"axis": 1}, [X, np.array([[2, -1], [0, 1]], np.int64)], 13),
    ("Gather", {}, [X, np.array(-1, np.int64)], 13),
    ("Pow", {}, [X, np.array(2, np.int64)], 13),
    ("Pow", {}, [np.abs(X), np.array(0.5, np.float32)], 13),
    ("Pow", {}, [np.array([2, 3], np.int32), np.array([3, 2], np.int64)], 13),
]


def _evaluator(op, attrs, inputs, opset):
    names = [f"in{k}" for k in range(len(inputs))]
    node = helper.make_node(op, names, ["out"], **attrs)
    vi = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), None)
          for n, x in zip(names, inputs, strict=True)]
    graph = helper.make_graph([node], "g", vi, [helper.make_tensor_value_info("out", 0, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    feeds = dict(zip(names, inputs, strict=True))
    return node, feeds, ReferenceEvaluator(model).run(None, feeds)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0])
def test_the_evaluators_arrays(case):
    node, feeds, (expected,) = _evaluator(*case)
    (got,) = fold(node, feeds)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert np.array_equal(got, expected)


def test_other_ops_and_bad_inputs_go_to_the_evaluator():
    node, feeds, _ = _evaluator("Neg", {}, [X], 13)
    assert fold(node, feeds) is None
    bad = onnx.helper.make_node("Concat", ["a", "b"], ["out"], axis=5)
    assert fold(bad, {"a": X, "b": X}) is None
