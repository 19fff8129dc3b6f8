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
ESPCN = {v: DATA / "bsd300x3-espcn" / v / "quant_model.onnx" for v in ("subpixel", "nn_resize")}
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


@pytest.fixture(scope="module", params=sorted(ESPCN))
def espcn_case(request):
    x = (np.random.default_rng(0).integers(0, 256, (1, 3, 128, 128)) / 256).astype(np.float32)
    path = ESPCN[request.param]
    return path, x, qonnx_run(onnx.load(path), x) * 255  # codes: the last scale is 1/255


# (variant, requant): the most codes any output differs by, and the share that differ at all.
# In nn_resize an 8-bit activation tipped at a near-tie (by float32 in qonnx, or by the 16-bit
# multiplier's 2^-16 relative error in the dyadic case) is upsampled to 2x2
# pixels and read by a 3x3 conv over 32 channels: up to 3 codes in 4x4 patches of the image.
BOUNDS = {("subpixel", "onnx"): (1, 0.0002), ("subpixel", "dyadic"): (1, 0.005),
          ("nn_resize", "onnx"): (3, 0.002), ("nn_resize", "dyadic"): (3, 0.12)}


@pytest.mark.parametrize("requant", ["onnx", "dyadic"])
def test_espcn_reference_against_qonnx(espcn_case, requant):
    """The pixel-shuffle (subpixel) and the nearest-upsampling (nn_resize) variants. With the
    float requantization qonnx's float32 arithmetic differs at near-ties only; the hardware's
    16-bit dyadic multipliers move a few more codes. Both are measured."""
    path, x, want = espcn_case
    (got,) = qfab.reference(path, x, requant=requant, input_format=ESPCN_INPUT).values()
    diff = np.abs(got * 255 - want)
    share = np.mean(diff > 0.5)
    print(f"{path.parent.name}, {requant}: {share:.3%} of {diff.size} codes differ, "
          f"by at most {diff.max():.0f}")
    most, most_share = BOUNDS[path.parent.name, requant]
    assert diff.max() < most + 0.001
    assert share <= most_share
