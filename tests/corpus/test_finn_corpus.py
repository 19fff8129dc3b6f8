"""The FINN / QONNX / Brevitas corpus (tests/corpus/MANIFEST.md) against qonnx's executor.

qonnx runs each model in float32 after ``cleanup_model`` (inputs fed by position: cleanup
renames them). qfab's integer reference must give the same scores up to qonnx's float32
rounding and the same argmax; a TopK output (an index) must be equal.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "frontend"))
from frontend_harness import lowered  # noqa: E402
from qonnx_graphs import qonnx_run  # noqa: E402

from qfab.api import reference  # noqa: E402

pytest.importorskip("qonnx")

CORPUS = Path(__file__).parent
DIGITS = "/work/shared/models/mnist4/digits.npy"
# Models whose float input has no quantizer (FINN quantizes it outside the network): the
# format given, and inputs drawn on its grid so that qonnx reads the same numbers.
INPUT_FORMAT = {"brevitas/mobilenet_w4a4_qonnx": ("fixed<8,1>", 2**-7)}


def corpus_inputs(path: str) -> np.ndarray:
    """Inputs in the range the model was made for: MNIST digits (raw 0..255 for an
    annotated UINT8 input, else scaled to [0, 1]) and random images."""
    model = onnx.load(path)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    rng = np.random.default_rng(0)
    if np.prod(shape) == 784:
        digits = np.load(DIGITS).reshape([4] + shape[1:])
        if any(qa.tensor_name == model.graph.input[0].name
               for qa in model.graph.quantization_annotation):
            return np.concatenate([digits, rng.integers(0, 256, [4] + shape[1:])]).astype(
                np.float32)
        return np.concatenate([digits / 255, rng.uniform(0, 1, [4] + shape[1:])]).astype(
            np.float32)
    x = rng.uniform(0, 1, [3] + shape[1:])
    for name, (_, step) in INPUT_FORMAT.items():
        if path.endswith(f"{name}.onnx"):
            x = np.floor(x / step) * step
    return x.astype(np.float32)


def corpus_models(*folders: str) -> list[str]:
    return sorted(f"{f}/{p.stem}" for f in folders for p in (CORPUS / f).glob("*.onnx"))


@pytest.mark.parametrize("name", corpus_models("finn", "brevitas"))
def test_reference_matches_qonnx(name):
    path = str(CORPUS / f"{name}.onnx")
    x = corpus_inputs(path)
    expected = qonnx_run(onnx.load(path), x)
    fmt = INPUT_FORMAT.get(name, (None,))[0]
    (got,) = reference(lowered(path) if fmt is None else path, x, input_format=fmt).values()
    assert got.shape == expected.shape
    if np.issubdtype(expected.dtype, np.integer):  # TopK's indices
        assert np.array_equal(got, expected)
        return
    scale = np.abs(expected).max(axis=-1, keepdims=True)
    assert np.all(np.abs(got - expected) <= 1e-5 * scale), np.abs(got - expected).max()
    assert np.array_equal(got.argmax(axis=-1), expected.argmax(axis=-1))
    assert len(np.unique(expected, axis=0)) > 1  # the inputs tell something apart


# The first layer that runs on the XNOR-popcount unit, and every one after it; the others
# run on the multiplier MVU. CNV's first convolution reads the 8-bit image.
FIRST_XNOR_LAYER = {"finn/tfc_w1a1_finn": 0, "finn/tfc_w1a1_bn_multithreshold": 0,
                    "brevitas/tfc_w1a1_qonnx": 0, "brevitas/cnv_w1a1_qonnx": 1}


@pytest.mark.parametrize("name", corpus_models("finn", "brevitas"))
def test_cosim_bit_exact(name):
    """Compiled and co-simulated in Verilator on two inputs: bit-exact, and the cycle
    model's cycles."""
    from qfab.cost_model.timing import cosim_differences
    from qfab.hw.xnor_mvu import is_xnor

    import qfab

    path = CORPUS / f"{name}.onnx"
    x = corpus_inputs(str(path))[:2]
    fmt = INPUT_FORMAT.get(name, (None,))[0]
    design = qfab.compile(path, input_format=fmt)
    mvus = [b for s in design.plan.stages for b in s.blocks if b.kind == "mvu"]
    first = FIRST_XNOR_LAYER.get(name, len(mvus))
    assert [is_xnor(b.params["multiplier"]) for b in mvus] == \
        [i >= first for i in range(len(mvus))], [b.params["multiplier"] for b in mvus]
    res = qfab.simulate(design, x)
    assert res.bit_exact, res.first_mismatch
    assert not cosim_differences(design.plan, res)
    (out,) = res.outputs.values()
    (want,) = reference(path, x, input_format=fmt).values()
    assert np.array_equal(out, want)
