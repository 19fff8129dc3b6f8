"""The channels-last corpus (tests/corpus/MANIFEST.md, keras/): qonnx's channels-last ops and
tf2onnx's transposes, a separable convolution, Conv1D. qfab's reference equals qonnx's
execution (the QONNX models) or onnxruntime's (the QDQ model) exactly, and the compiled
accelerator is bit-exact with the cycle model's cycles."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "frontend"))
from qfab.compiler.frontend.channels_last import CHANNELS_LAST_DOMAIN  # noqa: E402
from qonnx_graphs import qonnx_run  # noqa: E402

import qfab  # noqa: E402

KERAS = Path(__file__).parent / "keras"
QONNX_MODELS = sorted(KERAS.glob("*_qonnx.onnx"))
QDQ_MODEL = KERAS / "cnn_tf2onnx_qdq.onnx"


def keras_inputs(path: Path, n: int) -> np.ndarray:
    """Channels-last inputs in [0, 1), the range the input quantizers were made for."""
    shape = [d.dim_value for d in onnx.load(path).graph.input[0].type.tensor_type.shape.dim]
    return np.random.default_rng(0).uniform(0, 1, [n] + shape[1:]).astype(np.float32)


@pytest.mark.parametrize("path", QONNX_MODELS, ids=lambda p: p.stem)
def test_reference_equals_qonnx(path):
    model = onnx.load(path)
    # The form the corpus claims: qonnx's channels-last ops, or tf2onnx's transposes.
    ops = {n.op_type for n in model.graph.node if n.domain == CHANNELS_LAST_DOMAIN} if \
        "tf2onnx" not in path.stem else {n.op_type for n in model.graph.node}
    assert {"Conv", "Transpose"} & ops
    x = keras_inputs(path, 8)
    want = qonnx_run(model, x)
    (got,) = qfab.reference(path, x).values()
    assert np.array_equal(got, want), np.abs(got - want).max()
    assert len(np.unique(want, axis=0)) > 1


def test_tf2onnx_qdq_equals_onnxruntime():
    from ort_quantizer import run_rows

    x = keras_inputs(QDQ_MODEL, 50)
    want = run_rows(QDQ_MODEL, x)[-1]
    (got,) = qfab.reference(QDQ_MODEL, x, requant="onnx").values()
    assert np.array_equal(got, want)
    assert len(np.unique(want, axis=0)) > 1


@pytest.mark.parametrize("path", [*QONNX_MODELS, QDQ_MODEL], ids=lambda p: p.stem)
def test_cosim_bit_exact(path):
    """The transposes cost no stage; the accelerator is bit-exact on two inputs with the
    cycle model's cycles."""
    from qfab.cost_model.timing import cosim_differences

    design = qfab.compile(path)
    assert {s.op for s in design.plan.stages} <= {"conv", "dense", "requant", "threshold",
                                                   "maxpool", "bias", "upsample", "add"}
    x = keras_inputs(path, 2)
    res = qfab.simulate(design, x)
    assert res.bit_exact, res.first_mismatch
    assert not cosim_differences(design.plan, res)
    (out,) = res.outputs.values()
    (want,) = qfab.reference(path, x).values()
    assert np.array_equal(out, want)
