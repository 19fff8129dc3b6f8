"""Models other people exported, shipped in the qonnx wheel (``qonnx/data/onnx``, BSD-3):
Brevitas's FP8 (E4M3) linear layer with the output Brevitas recorded, and FINN's ESPCN
super-resolution network (4-bit convs, a pixel shuffle at the end, pruned channels whose
BatchNorm weight is 1e-41). Nothing here was written by qfab."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "frontend"))
from qonnx_graphs import qonnx_run  # noqa: E402

import qfab  # noqa: E402

qonnx = pytest.importorskip("qonnx")
DATA = Path(qonnx.__file__).parent / "data" / "onnx"
FP8 = DATA / "floatquant_exec"
ESPCN = DATA / "bsd300x3-espcn" / "subpixel" / "quant_model.onnx"
ESPCN_INPUT = "fixed<9,1>"  # the float image in [0, 1), 8 fraction bits


def test_brevitas_fp8_equals_brevitas_and_cosimulates_bit_exact():
    from qfab.cost_model.timing import cosim_differences

    model = FP8 / "qonnx_act_weight_fp8.onnx"
    x = np.load(FP8 / "test_data" / "input.npy")
    want = np.load(FP8 / "test_data" / "output.npy")
    (got,) = qfab.reference(model, x).values()
    # Brevitas multiplies the exact integer sums by the scales in float32; qfab rounds the
    # exact product once.
    np.testing.assert_array_max_ulp(got, want, maxulp=1)
    design = qfab.compile(model)
    xs = np.random.default_rng(0).uniform(-1, 1, (4, 3)).astype(np.float32)
    res = qfab.simulate(design, xs)
    assert res.bit_exact, res.first_mismatch
    assert not cosim_differences(design.plan, res)


@pytest.fixture(scope="module")
def espcn_case():
    x = (np.random.default_rng(0).integers(0, 256, (1, 3, 128, 128)) / 256).astype(np.float32)
    return x, qonnx_run(onnx.load(ESPCN), x) * 255  # codes: the last scale is 1/255


@pytest.mark.parametrize("requant, most", [("onnx", 0.0002), ("dyadic", 0.005)])
def test_espcn_reference_against_qonnx(espcn_case, requant, most):
    """With the float requantization qonnx's float32 arithmetic differs at near-ties only; the
    hardware's 16-bit dyadic multipliers move a few more codes by one. Both are measured."""
    x, want = espcn_case
    (got,) = qfab.reference(ESPCN, x, requant=requant, input_format=ESPCN_INPUT).values()
    diff = np.abs(got * 255 - want)
    assert diff.max() < 1.001
    share = np.mean(diff > 0.5)
    print(f"{requant}: {share:.3%} of {diff.size} output codes differ from qonnx by one")
    assert share <= most
