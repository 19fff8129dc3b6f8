"""The post-training quantizer's choices (cost_model/ptq.py): clipping of least error, GPTQ
rounding, bias correction, and the quantized model they write."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from qfab.cost_model.datasets import load_data
from qfab.cost_model.ptq import (
    best_scale,
    gptq_rows,
    int_scale,
    layer_groups,
    optimal_weights,
    output_error,
    output_shift,
    quantized,
)
from qfab.cost_model.quantize import QuantSpec, quantize_model
from qfab.cost_model.sensitivity import reference_output, relative_noise
from qfab.cost_model.sweep import float_outputs

import qfab
from qfab.errors import QfabError

ROOT = Path(__file__).resolve().parents[2]
FLOAT_MODEL = ROOT / "examples" / "digits" / "digits_float.onnx"


def _error(values, scale, bits, signed):
    top = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    return float(np.sum((np.clip(np.round(values / scale), -top, top) * scale - values) ** 2))


@pytest.mark.parametrize("fixed", [False, True])
def test_clipping_beats_the_largest_value_on_a_heavy_tail(fixed):
    rng = np.random.default_rng(0)
    values = np.abs(rng.standard_t(2, 20000))  # a ReLU output with rare large values
    plain = int_scale(values.max(), 4, False, fixed)
    got = best_scale(values, 4, False, fixed)
    assert got < plain
    assert _error(values, got, 4, False) < 0.8 * _error(values, plain, 4, False)
    if fixed:
        assert np.log2(got) == round(np.log2(got))


def _conv_reference(x, w, stride, pad, group):
    """Direct 2-D convolution, no bias (N, C, H, W) * (O, C/g, kh, kw)."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n, o, oh, ow))
    per = o // group
    for k in range(o):
        g = k // per
        for i in range(oh):
            for j in range(ow):
                win = xp[:, g * cg:(g + 1) * cg, i * stride:i * stride + kh,
                         j * stride:j * stride + kw]
                out[:, k, i, j] = np.sum(win * w[k], axis=(1, 2, 3))
    return out


@pytest.mark.parametrize("stride, pad, group", [(1, 1, 1), (2, 1, 1), (1, 1, 4), (1, 0, 1)])
def test_conv_groups_and_shift_match_a_direct_convolution(stride, pad, group):
    rng = np.random.default_rng(1)
    x = rng.random((5, 4, 6, 6))
    dw = rng.standard_normal((8, 4 // group, 3, 3))
    attrs = {"pads": [pad] * 4, "strides": [stride] * 2, "group": group}
    want = _conv_reference(x, dw, stride, pad, group)
    assert np.allclose(output_shift("Conv", attrs, dw, x), want.mean(axis=(0, 2, 3)))
    # Each group's weights times its windows give that group's output channels.
    for wg, out, rows in layer_groups("Conv", attrs, dw, x):
        got = rows @ wg.T  # [n * oh * ow, channels]
        assert np.allclose(got, want[:, out].transpose(0, 2, 3, 1).reshape(len(rows), -1))


def test_gptq_rounds_onto_the_grid_with_less_output_error():
    rng = np.random.default_rng(2)
    x = rng.random((400, 24)) @ rng.random((24, 24))  # correlated inputs
    w = rng.standard_normal((6, 24))
    h = x.T @ x / len(x)
    scale, top = int_scale(np.abs(w).max(), 4, True, False), 7
    q = gptq_rows(w, h, scale, top)
    codes = q / scale
    assert np.array_equal(codes, np.round(codes)) and np.abs(codes).max() <= top
    assert output_error(q - w, h) < 0.7 * output_error(quantized(w, scale, 4) - w, h)
    got, chosen = optimal_weights("Gemm", {"transB": 1}, w, x, 4, fixed=True)
    assert np.log2(chosen) == round(np.log2(chosen)) and got.shape == w.shape


def _weights(model, name):
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    node = next(n for n in model.graph.node if n.name == f"quant_{name}_w")
    return inits[node.input[0]].astype(np.float64), float(inits[node.input[1]])


def test_quantized_model_holds_weights_on_the_grid_and_is_quieter():
    """The written weights are codes times the scale (the Quant node rounds them to
    themselves), and on the digits CNN at int5 the output noise by the integer reference is well
    under rounding to nearest from the largest value's."""
    d = load_data("digits", 128, 200)
    model = onnx.load(FLOAT_MODEL)
    spec = QuantSpec("int", 5)
    plain = quantize_model(model, spec, spec, d.x_calibration, clip="max", rounding="nearest",
                           bias_correction=False)
    better = quantize_model(model, spec, spec, d.x_calibration)
    for layer in ("conv1", "conv2", "fc"):
        w, scale = _weights(better, layer)
        codes = np.round(w / scale)  # float32 stores codes x scale to within 1e-6
        assert np.abs(w / scale - codes).max() < 1e-4 and np.abs(codes).max() <= 15
    assert any(t.name.endswith("_corrected") for t in better.graph.initializer)
    want = float_outputs(model, d.x_test).astype(np.float64)
    noise = [relative_noise(reference_output(qfab.lower_model(m), d.x_test), want)
             for m in (plain, better)]
    assert noise[1] < 0.6 * noise[0]


def test_plain_quantizer_takes_the_largest_value():
    d = load_data("digits", 64, 10)
    model = onnx.load(FLOAT_MODEL)
    plain = quantize_model(model, QuantSpec("int", 6), QuantSpec("int", 6), d.x_calibration,
                           ptq="max")
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for layer in ("conv1", "conv2", "fc"):
        w, scale = _weights(plain, layer)
        assert np.array_equal(w, inits[f"{layer}_w"])  # the float weights, as they were
        assert scale == np.float32(np.abs(w).max() / 31)
    assert not any(t.name.endswith("_corrected") for t in plain.graph.initializer)
    with pytest.raises(QfabError, match="unknown post-training quantizer 'best'"):
        quantize_model(model, QuantSpec("int", 6), QuantSpec("int", 6), d.x_calibration,
                       ptq="best")


def test_bias_correction_cancels_the_mean_shift_of_the_weights():
    d = load_data("digits", 128, 200)
    model = onnx.load(FLOAT_MODEL)
    spec, a8 = QuantSpec("int", 3), QuantSpec("int", 8)
    weights = [spec, a8, a8]  # conv1's weights only, rounded to nearest
    kw = {"clip": "max", "rounding": "nearest"}
    out = {}
    for corrected in (False, True):
        m = quantize_model(model, weights, a8, d.x_calibration, bias_correction=corrected, **kw)
        graph = qfab.lower_model(m)
        out[corrected] = reference_output(graph, d.x_calibration)
    want = float_outputs(model, d.x_calibration).astype(np.float64)
    shift = {k: np.abs((v - want).mean(axis=0)).mean() for k, v in out.items()}
    assert shift[True] < 0.5 * shift[False]
