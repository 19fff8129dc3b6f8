"""Zero point types against the types of the tensors they go with, computed tensors included
(types inferred along the graph, through the com.microsoft ops onnx does not know): what
onnxruntime refuses to load, qfab refuses in one line naming the node; what it loads, qfab
takes. (A DequantizeLinear's int32 zero point after a QOperator op was taken, and the uint8
codes read as int32.)"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).parent))

from fuzz_corpus import seeds  # noqa: E402
from qfab.compiler.frontend.validate import validate_model  # noqa: E402

from qfab.errors import QfabError  # noqa: E402

SEEDS = {s.name: s for s in seeds()}


def _own_zero_point(node_name: str, index: int, value) -> Callable[[onnx.ModelProto], None]:
    """Give one node input ``index`` a zero point of its own (seeds share them)."""
    def edit(model: onnx.ModelProto) -> None:
        node = next(n for n in model.graph.node if (n.name or n.output[0]) == node_name)
        name = f"{node_name}_own_zero_point"
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        node.input[index] = name
    return edit


def _quantize_codes(model: onnx.ModelProto) -> None:
    """A QuantizeLinear of int8 codes (the Conv's input codes) rather than of floats."""
    node = next(n for n in model.graph.node if n.name == "q_c")
    node.input[0] = "xq"


def _every_zero_point_signed(model: onnx.ModelProto) -> None:
    """Every uint8 zero point the same value as int8, consistently: still a valid model."""
    for init in model.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.uint8:
            init.CopyFrom(numpy_helper.from_array((a.astype(np.int16) - 128).astype(np.int8),
                                                  init.name))


# (seed, what, edit, words of qfab's error line)
INVALID = [
    ("mlp_softmax_qop", "int32 zero point on a DequantizeLinear after QLinearSoftmax",
     _own_zero_point("y_DequantizeLinear", 2, np.int32(0)), "zero point"),
    ("qoperator_ops", "int8 zero point on a DequantizeLinear after QGemm's uint8",
     _own_zero_point("dq_out", 2, np.int8(0)), "but the data 'o' it reads is uint8"),
    ("qoperator_ops", "int8 output zero point on QLinearAdd of uint8",
     _own_zero_point("qadd", 7, np.int8(0)), "output zero point"),
    ("qoperator_ops", "int8 input zero point on QLinearGlobalAveragePool of uint8",
     _own_zero_point("qgap", 2, np.int8(0)), "it reads is uint8"),
    ("qdq_pools", "QuantizeLinear of codes", _quantize_codes, "not a number type"),
]


def _edited(seed: str, edit) -> onnx.ModelProto:
    model = onnx.load_from_string(SEEDS[seed].model)
    edit(model)
    return model


def _onnxruntime_loads(model: onnx.ModelProto) -> bool:
    try:
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception:  # onnxruntime raises its own exception types on an invalid graph
        return False
    return True


@pytest.mark.parametrize("seed,what,edit,words", INVALID, ids=[c[1] for c in INVALID])
def test_mistyped_zero_point_is_refused(seed, what, edit, words):
    model = _edited(seed, edit)
    assert not _onnxruntime_loads(model)
    with pytest.raises(QfabError) as e:
        validate_model(model)
    assert words in str(e.value) and len(str(e.value).splitlines()) == 1
    node = next(n for n in model.graph.node if n.name and repr(n.name) in str(e.value))
    assert node.op_type in str(e.value)


def test_consistent_signed_zero_points_are_taken():
    model = _edited("qoperator_ops", _every_zero_point_signed)
    assert _onnxruntime_loads(model)
    validate_model(model)
