"""Hypothesis over the input arrays `qfab.reference` is given: any dtype, batch size, shape
and values. An array is taken exactly when it is valid (real numbers of the model's shape,
at least one sample, finite where the model takes floats, integers in range where it takes
codes); anything else is a one-line QfabError, never another exception."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

from fuzz_corpus import seeds  # noqa: E402

from qfab.api import lower_model, reference  # noqa: E402
from qfab.errors import QfabError  # noqa: E402

DTYPES = ["int8", "uint8", "int16", "int32", "int64", "float16", "float32", "float64", "bool",
          "complex64", "str"]
SAMPLE = (2, 6, 6)  # the QOperator seed's input, without the batch
UINT8_MAX = 255


@pytest.fixture(scope="module")
def graphs():
    """The QOperator seed lowered twice: its float input, and the same graph fed uint8 codes
    (the input quantizer removed)."""
    model = onnx.load_from_string(next(s for s in seeds() if s.name == "qoperator_ops").model)
    codes = onnx.ModelProto()
    codes.CopyFrom(model)
    codes.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.UINT8
    q = next(n for n in codes.graph.node if n.name == "q_in")
    codes.graph.node.remove(q)
    for n in codes.graph.node:
        n.input[:] = ["x" if i == "xq" else i for i in n.input]
    return {"float": lower_model(model), "codes": lower_model(codes)}


@st.composite
def arrays(draw) -> np.ndarray:
    dtype = draw(st.sampled_from(DTYPES))
    batch = draw(st.integers(0, 3))
    shape = (batch, *SAMPLE) if draw(st.integers(0, 4)) else draw(
        st.sampled_from([SAMPLE, (batch, 2, 6, 5), (batch, 1, 2, 6, 6)]))
    values = draw(st.sampled_from(["codes", "fractions", "huge", "negative", "nan", "inf"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = {"codes": rng.integers(0, UINT8_MAX + 1, shape).astype(np.float64),
         "fractions": rng.uniform(0, 1, shape), "huge": rng.uniform(0, 1, shape) * 1e6,
         "negative": -rng.integers(1, 100, shape).astype(np.float64),
         "nan": np.full(shape, np.nan), "inf": np.full(shape, np.inf)}[values]
    if dtype == "str":
        return np.full(shape, "pixel")
    with np.errstate(invalid="ignore", over="ignore"):
        return x.astype(dtype)


def _valid(x: np.ndarray, kind: str) -> bool:
    if x.dtype.kind not in "fiu" or x.ndim != 4 or x.shape[1:] != SAMPLE or not len(x):
        return False
    if kind == "float":
        return bool(np.all(np.isfinite(x)))
    return bool(np.all(np.isfinite(x)) and np.all(x == np.round(x)) and np.all(x >= 0)
                and np.all(x <= UINT8_MAX))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(kind=st.sampled_from(["float", "codes"]), x=arrays())
def test_input_arrays_taken_exactly_when_valid(graphs, kind, x):
    try:
        out = reference(graphs[kind], x)
    except QfabError as e:
        assert "\n" not in str(e)
        assert not _valid(x, kind), f"a valid {x.dtype}{x.shape} array refused: {e}"
        return
    assert _valid(x, kind), f"an invalid {x.dtype}{x.shape} array taken"
    (y,) = out.values()
    assert len(y) == len(x) and np.all(np.isfinite(y))
