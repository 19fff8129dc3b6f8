"""QONNX against qonnx's own executor: the TFC_2W2A model zoo MLP, and small graphs built here
with Quant, BipolarQuant, Trunc, MultiThreshold and FloatQuant (E4M3, E5M2, E2M1, and E3M2
without subnormals).

qonnx executes in float32. The built graphs use power-of-two scales and small layers, so every
float32 step qonnx takes is exact and the comparison is exact (both requant modes). TFC_2W2A
ends in a float BatchNorm affine, so there qfab must agree within float rounding, with the same
argmax.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from frontend_harness import lowered
from qonnx_graphs import FLOAT_FORMATS, Builder, pow2, qonnx_run, to_qcdq

from qfab.api import reference

pytest.importorskip("qonnx")

TFC = "/work/shared/models/qonnx/TFC_2W2A.onnx"
DIGITS = "/work/shared/models/mnist4/digits.npy"
MODES = ("dyadic", "onnx")


# ---- TFC_2W2A --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tfc_inputs():
    digits = np.load(DIGITS).astype(np.float32) / np.float32(255)
    rand = np.random.default_rng(0).uniform(0, 1, (6, 1, 28, 28)).astype(np.float32)
    return digits, rand


@pytest.mark.parametrize("mode", MODES)
def test_tfc_matches_qonnx_within_float_rounding(tfc_inputs, mode, record_property):
    digits, rand = tfc_inputs
    x = np.concatenate([digits, rand])
    expected = qonnx_run(onnx.load(TFC), x)
    (got,) = reference(TFC, x, requant=mode).values()
    diff = np.abs(got - expected)
    bound = 1e-5 * np.abs(expected).max(axis=1, keepdims=True)
    record_property("max_abs_diff", float(diff.max()))
    print(f"\nTFC_2W2A ({mode}): max |qfab - qonnx| = {diff.max():.3g} "
          f"(outputs up to {np.abs(expected).max():.3g})")
    assert (diff <= bound).all(), f"max diff {diff.max()} exceeds float rounding"
    assert np.array_equal(got.argmax(axis=1), expected.argmax(axis=1))
    assert list(got[:4].argmax(axis=1)) == [7, 2, 1, 0]


# ---- graphs built here ------------------------------------------------------------------

def quant_mlp(rng):
    b = Builder()
    x = b.quant("x", 2.0**-4, 8)
    w1 = b.quant(b.weight(rng.normal(0, 0.5, (16, 8))), 2.0**-3, 4, narrow=1)
    h = b.node("Relu", [b.node("MatMul", [x, w1])])
    h = b.quant(h, 2.0**-2, 4, signed=0)
    w2 = b.quant(b.weight(rng.normal(0, 0.5, (8, 5))), pow2(rng, -4, -2, (1, 5)), 4)
    y = b.quant(b.node("MatMul", [h, w2]), 2.0**-3, 8)
    return b.model((1, 16), y), rng.uniform(-9, 9, (4, 16))


def quant_conv(rng):
    b = Builder()
    x = b.quant("x", 2.0**-4, 8)
    w = b.quant(b.weight(rng.normal(0, 0.4, (4, 2, 3, 3))), pow2(rng, -4, -2, (4, 1, 1, 1)), 4)
    bias = b.const(rng.integers(-64, 64, 4) * 2.0**-8, "bias")
    h = b.node("Relu", [b.node("Conv", [x, w, bias], pads=[1, 1, 1, 1])])
    h = b.quant(h, 2.0**-2, 4, signed=0)
    h = b.node("Flatten", [b.node("MaxPool", [h], kernel_shape=[2, 2], strides=[2, 2])])
    w2 = b.quant(b.weight(rng.normal(0, 0.3, (36, 5))), 2.0**-3, 4)
    y = b.quant(b.node("MatMul", [h, w2]), 2.0**-2, 8)
    return b.model((1, 2, 6, 6), y), rng.uniform(-9, 9, (4, 2, 6, 6))


def bipolar_mlp(rng):
    b = Builder()
    x = b.bipolar("x")
    h = b.node("MatMul", [x, b.bipolar(b.weight(rng.normal(0, 1, (16, 12))))])
    h = b.bipolar(h)
    y = b.node("MatMul", [h, b.bipolar(b.weight(rng.normal(0, 1, (12, 4))), 0.5)])
    return b.model((1, 16), b.quant(y, 0.5, 8)), rng.normal(0, 1, (4, 16))


def trunc_mlp(rng, rounding="FLOOR"):
    b = Builder()
    x = b.trunc(b.quant("x", 2.0**-4, 8), 2.0**-4, 8, 4, rounding)
    w = b.quant(b.weight(rng.normal(0, 0.5, (16, 6))), 2.0**-3, 4)
    y = b.quant(b.node("MatMul", [x, w]), 2.0**-3, 8)
    return b.model((1, 16), y), rng.uniform(-9, 9, (4, 16))


def multithreshold_mlp(rng, out_scale=0.5, out_bias=0.0):
    """MultiThreshold as a FINN-streamlined activation: per-channel real thresholds."""
    b = Builder()
    x = b.quant("x", 2.0**-4, 8)
    h = b.node("MatMul", [x, b.quant(b.weight(rng.normal(0, 0.5, (16, 6))), 2.0**-3, 4)])
    thresholds = np.sort(rng.integers(-40, 40, (6, 3)) * 2.0**-5, axis=1)
    h = b.multithreshold(h, thresholds, out_scale, out_bias, "UINT2")
    y = b.node("MatMul", [h, b.quant(b.weight(rng.normal(0, 0.5, (6, 4))), 2.0**-2, 4)])
    return b.model((1, 16), b.quant(y, 2.0**-3, 8)), rng.uniform(-4, 4, (4, 16))


def multithreshold_conv(rng):
    """One threshold row shared by every channel of a conv output."""
    b = Builder()
    x = b.quant("x", 2.0**-3, 6)
    h = b.node("Conv", [x, b.quant(b.weight(rng.normal(0, 0.4, (3, 2, 3, 3))), 2.0**-3, 4)])
    h = b.multithreshold(h, np.array([[-1.0, -0.25, 0.0, 0.5, 1.25]]), 1.0, -2.0, "INT3")
    return b.model((1, 2, 5, 5), b.quant(h, 1.0, 4)), rng.uniform(-3, 3, (4, 2, 5, 5))


def _magnitudes(rng, lo_exp, hi_exp, size):
    """Random signs times log-uniform magnitudes in [2**lo_exp, 2**hi_exp]."""
    mag = np.exp2(rng.uniform(lo_exp, hi_exp, size))
    return (mag * rng.choice([-1.0, 1.0], size)).astype(np.float32)


def float_mlp(rng, fmt):
    # Magnitudes within a few octaves keep every float32 sum qonnx forms exact.
    b = Builder()
    x = b.float_quant("x", 2.0**-2, fmt)
    w = b.float_quant(b.weight(_magnitudes(rng, -2, 1, (8, 6))), 2.0**-1, fmt)
    y = b.float_quant(b.node("MatMul", [x, w]), 2.0**-1, fmt)
    return b.model((1, 8), y), _magnitudes(rng, -1, 2, (4, 8))


def float_conv(rng, fmt="E4M3"):
    b = Builder()
    x = b.float_quant("x", 2.0**-3, fmt)
    w = b.float_quant(b.weight(_magnitudes(rng, -2, 1, (3, 2, 3, 3))), 2.0**-2, fmt)
    y = b.float_quant(b.node("Conv", [x, w]), 2.0**-1, fmt)
    return b.model((1, 2, 5, 5), y), _magnitudes(rng, -2, 1, (3, 2, 5, 5))


GRAPHS = {
    "quant_mlp": quant_mlp,
    "quant_conv": quant_conv,
    "bipolar_mlp": bipolar_mlp,
    "trunc_floor_mlp": trunc_mlp,
    "trunc_round_mlp": lambda rng: trunc_mlp(rng, "ROUND"),
    "multithreshold_mlp": multithreshold_mlp,
    "multithreshold_bias_mlp": lambda rng: multithreshold_mlp(rng, 1.0, -1.0),
    "multithreshold_conv": multithreshold_conv,
    **{f"floatquant_{f}_mlp": (lambda rng, f=f: float_mlp(rng, f))
       for f in FLOAT_FORMATS if f != "E3M2_nosub"},
    "floatquant_E4M3_conv": float_conv,
    "floatquant_E2M1_conv": lambda rng: float_conv(rng, "E2M1"),
}


@pytest.mark.parametrize("name", list(GRAPHS))
@pytest.mark.parametrize("seed", [0, 1])
def test_built_graph_matches_qonnx_exactly(name, seed):
    model, x = GRAPHS[name](np.random.default_rng(seed))
    x = x.astype(np.float32)
    expected = qonnx_run(model, x)
    graph = lowered(model)
    for mode in MODES:
        (got,) = reference(graph, x, requant=mode).values()
        bad = got != expected
        assert not bad.any(), (f"{mode}: {bad.sum()}/{bad.size} differ, e.g. "
                               f"{got[bad][:4]} vs {expected[bad][:4]}")


def test_quantized_values_are_not_trivial():
    """The exact comparisons above mean something only if outputs vary and inputs saturate."""
    for name in ("quant_mlp", "quant_conv", "trunc_round_mlp"):
        model, x = GRAPHS[name](np.random.default_rng(0))
        y = qonnx_run(model, x.astype(np.float32))
        assert len(np.unique(y)) > 8, name
        assert np.abs(x).max() > 127 * 2.0**-4, name  # beyond the 8-bit input quantizer


def _round_e3m2_nosub(v: np.ndarray) -> np.ndarray:
    """Round to nearest E3M2 without subnormals (bias 3), ties to the even code, from the
    format's definition: magnitudes (4 + man) * 2**(field - 5), except field 0, man 0 is 0.
    (gfloat does not implement formats without subnormals.)"""
    mags = [(0.0, 0)] + [((4 + man) * 2.0 ** (field - 5), man & 1)
                         for field in range(8) for man in range(4) if field or man]
    table = np.array([m for m, _ in mags])
    odd = np.array([o for _, o in mags])
    a = np.abs(v)[:, None]
    dist = np.abs(a - table[None, :])
    best = dist.min(axis=1, keepdims=True)
    nearest = dist == best
    tie = nearest.sum(axis=1, keepdims=True) > 1
    cand = nearest & ~(tie & (odd[None, :] == 1))
    return np.sign(v) * table[np.argmax(cand, axis=1)]


def test_float_format_without_subnormals():
    """E3M2 without subnormals: where the value is normal, qfab equals qonnx; below the
    smallest normal (where qonnx, which always rounds with subnormals, differs by design) it
    equals rounding to the format's own value table."""
    bias = FLOAT_FORMATS["E3M2_nosub"][2]
    min_normal = 2.0 ** (1 - bias)  # the with-subnormals format's smallest normal
    rng = np.random.default_rng(7)
    model, _ = float_mlp(rng, "E3M2_nosub")
    x = _magnitudes(rng, np.log2(min_normal) - 2 + 0.01, 2, (6, 8))  # x scale is 2**-2
    matmul = next(n.output[0] for n in model.graph.node if n.op_type == "MatMul")
    expected, acc = qonnx_run(model, x, keep=matmul)
    scale = 2.0**-1
    normal = np.abs(acc / scale) >= min_normal
    assert normal.any() and (~normal).any()
    graph = lowered(model)
    for mode in MODES:
        (got,) = reference(graph, x, requant=mode).values()
        assert np.array_equal(got[normal], expected[normal]), mode
        nosub = _round_e3m2_nosub((acc[~normal] / scale).astype(np.float64)) * scale
        assert np.array_equal(got[~normal], nosub.astype(np.float32)), mode


def test_tfc_as_qcdq_lowers_to_the_same_integer_graph(tfc_inputs):
    """QCDQ (int8 QuantizeLinear, Clip to the 2-bit range, DequantizeLinear) gives the same
    layers as the QONNX form, the same outputs exactly in both modes, and matches
    onnxruntime within float rounding."""
    import onnxruntime as ort

    qcdq = to_qcdq(TFC)
    assert {n.op_type for n in qcdq.graph.node} >= {"QuantizeLinear", "Clip", "DequantizeLinear"}
    a, b = lowered(qcdq), lowered(TFC)
    assert [n.op for n in a.nodes] == [n.op for n in b.nodes]
    x = np.concatenate(tfc_inputs)
    for mode in MODES:
        (ya,) = reference(a, x, requant=mode).values()
        (yb,) = reference(b, x, requant=mode).values()
        assert np.array_equal(ya, yb), mode
    session = ort.InferenceSession(qcdq.SerializeToString(), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    expected = np.concatenate([session.run(None, {name: s[None]})[0] for s in x])
    assert np.abs(ya - expected).max() <= 1e-5 * np.abs(expected).max()
    assert np.array_equal(ya.argmax(axis=1), expected.argmax(axis=1))
