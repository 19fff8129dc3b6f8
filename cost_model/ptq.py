"""Choices of the post-training quantizer beyond one scale from the largest value: clipping
ranges that minimise the quantization error, and bias correction.

- **Clipping** (``clip="mse"``): a tensor's range is the one of a grid of fractions of its
  largest magnitude whose quantize-dequantize error ``sum((q(x) - x)^2)`` is least (the
  weights themselves; an activation's values on the calibration inputs, by the float
  model). Values past the range saturate. For fixed point the grid is the powers of two at
  and below the one that holds the largest value. Minifloats keep the largest value.
- **Bias correction** (``bias_correction=True``): a layer's quantized weights shift the mean
  of its output, channel by channel, by ``sum(dW * E[x])``, ``dW`` the weights' rounding and
  clipping error and ``E[x]`` the mean input (the float model's, over the calibration inputs
  and each output position's window, zero in the padding). That shift is taken off the
  float bias, which the frontend folds into the integer accumulator like any other bias.

Neither changes the hardware: a different scale is a different requantizer constant of the
same width, a different bias a different accumulator constant.
"""

from __future__ import annotations

import math

import numpy as np

GRID = np.linspace(0.30, 1.0, 71)  # fractions of max|x| tried as the clipping range
GPTQ_GRID = np.linspace(0.50, 1.0, 21)  # the same for weights rounded by GPTQ
FIXED_STEPS = 4  # powers of two tried below the one that holds max|x|
SAMPLE_LIMIT = 1 << 18  # activation values the clipping search looks at, at most


def qmax(bits: int, signed: bool) -> int:
    return (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1


def int_scale(amax: float, bits: int, signed: bool, fixed: bool) -> float:
    """The scale of a ``bits``-bit quantizer whose range is ``amax`` (rounded up to a power
    of two for fixed point)."""
    scale = max(float(amax), 1e-8) / qmax(bits, signed)
    return 2.0 ** math.ceil(math.log2(scale)) if fixed else scale


def _error(values: np.ndarray, scales: np.ndarray, top: int) -> np.ndarray:
    """sum((q(x) - x)^2) for each scale (symmetric narrow range ±top, as the Quant nodes)."""
    q = np.clip(np.round(values[None, :] / scales[:, None]), -top, top) * scales[:, None]
    return np.sum((q - values[None, :]) ** 2, axis=1)


def best_scale(values: np.ndarray, bits: int, signed: bool, fixed: bool) -> float:
    """The scale of least quantize-dequantize error on ``values`` among the clipping grid's
    (for fixed point: the power of two holding max|x| and the ``FIXED_STEPS`` below it)."""
    values = np.asarray(values, np.float64).ravel()
    if values.size > SAMPLE_LIMIT:  # a fixed, evenly spaced subsample
        values = values[:: -(-values.size // SAMPLE_LIMIT)]
    amax = float(np.abs(values).max()) if values.size else 0.0
    top = qmax(bits, signed)
    if amax <= 0:
        return int_scale(amax, bits, signed, fixed)
    if fixed:
        first = int_scale(amax, bits, signed, True)
        scales = first / 2.0 ** np.arange(FIXED_STEPS + 1)
    else:
        scales = amax * GRID / top
    # Ties go to the larger range: fewer values saturate on inputs not seen here.
    err = _error(values, scales, top)
    return float(scales[np.flatnonzero(err <= err.min() * (1 + 1e-9))].max())


def quantized(w: np.ndarray, scale: float, bits: int) -> np.ndarray:
    """Signed narrow-range quantize-dequantize of weights, as the Quant node rounds."""
    top = qmax(bits, True)
    return np.clip(np.round(w / scale), -top, top) * scale


def _conv_patches(x: np.ndarray, kernel: tuple[int, int], attrs: dict) -> np.ndarray | None:
    """A 2-D convolution's input windows: [N * OH * OW, C, kh, kw] (zero in the padding)."""
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or x.ndim != 4:
        return None
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    strides = list(attrs.get("strides", [1, 1]))
    dil = list(attrs.get("dilations", [1, 1]))
    n, c, h, w = x.shape
    kh, kw = kernel
    xp = np.zeros((n, c, h + pads[0] + pads[2], w + pads[1] + pads[3]), np.float64)
    xp[:, :, pads[0]:pads[0] + h, pads[1]:pads[1] + w] = x
    oh = (xp.shape[2] - dil[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (xp.shape[3] - dil[1] * (kw - 1) - 1) // strides[1] + 1
    taps = np.empty((n, oh, ow, c, kh, kw))
    for i in range(kh):
        for j in range(kw):
            r, s = i * dil[0], j * dil[1]
            tap = xp[:, :, r:r + strides[0] * oh:strides[0], s:s + strides[1] * ow:strides[1]]
            taps[..., i, j] = tap.transpose(0, 2, 3, 1)
    return taps.reshape(n * oh * ow, c, kh, kw)


def layer_groups(op: str, attrs: dict, w: np.ndarray,
                 x: np.ndarray) -> list[tuple[np.ndarray, slice, np.ndarray]] | None:
    """A MAC layer as independent matrix products: for each group, the weights [out, K],
    the slice of output channels they make, and the inputs [rows, K] they see (the float
    inputs ``x`` on the calibration data; a convolution's windows). None for a layer this
    does not handle (then the weights are rounded to nearest)."""
    if op == "Gemm":
        if attrs.get("alpha", 1.0) != 1.0 or attrs.get("transA", 0) or w.ndim != 2:
            return None
        wt = w if attrs.get("transB", 0) else w.T
        return [(wt, slice(0, len(wt)), x.reshape(len(x), -1).astype(np.float64))]
    if op != "Conv" or w.ndim != 4:
        return None
    taps = _conv_patches(x, tuple(w.shape[2:]), attrs)
    if taps is None:
        return None
    group = int(attrs.get("group", 1))
    cout, cin_g = w.shape[:2]
    per = cout // group
    return [(w[g * per:(g + 1) * per].reshape(per, -1), slice(g * per, (g + 1) * per),
             taps[:, g * cin_g:(g + 1) * cin_g].reshape(len(taps), -1))
            for g in range(group)]


def output_shift(op: str, attrs: dict, dw: np.ndarray, x: np.ndarray) -> np.ndarray | None:
    """The mean output shift, per output channel, that weight error ``dw`` causes on inputs
    ``x`` (the layer's float inputs); None for a layer this does not handle."""
    groups = layer_groups(op, attrs, dw, x)
    if groups is None:
        return None
    shift = np.empty(sum(len(d) for d, _, _ in groups))
    for d, out, rows in groups:
        shift[out] = d @ rows.mean(axis=0)
    return shift


DAMPING = 0.01  # of the mean diagonal, added to the inputs' second moment


def gptq_rows(w: np.ndarray, h: np.ndarray, scale: float, top: int) -> np.ndarray:
    """Weights [out, K] rounded one input column at a time, each column's rounding error
    spread over the columns not yet rounded so as to least change the output on inputs of
    second moment ``h`` [K, K] (GPTQ, Frantar et al. 2023): codes times ``scale``."""
    w = w.astype(np.float64).copy()
    k = h.shape[0]
    h = h + np.eye(k) * DAMPING * max(float(np.mean(np.diag(h))), 1e-12)
    dead = np.diag(h) <= 0
    h[dead, dead] = 1.0
    try:
        u = np.linalg.cholesky(np.linalg.inv(h)).T  # upper: inv(h) = u.T @ u
    except np.linalg.LinAlgError:
        return np.clip(np.round(w / scale), -top, top) * scale
    q = np.empty_like(w)
    for j in range(k):
        q[:, j] = np.clip(np.round(w[:, j] / scale), -top, top) * scale
        err = (w[:, j] - q[:, j]) / u[j, j]
        w[:, j + 1:] -= np.outer(err, u[j, j + 1:])
    return q


def output_error(dw: np.ndarray, h: np.ndarray) -> float:
    """sum over outputs of dW H dW^T: the output's squared error summed over the inputs."""
    return float(np.einsum("ok,kl,ol->", dw, h, dw))


def optimal_weights(op: str, attrs: dict, w: np.ndarray, x: np.ndarray, bits: int,
                    fixed: bool) -> tuple[np.ndarray, float] | None:
    """Weights on the grid of a ``bits``-bit signed quantizer and its scale, chosen for the
    least output error on the layer's float inputs ``x``: every scale of the clipping grid
    (fixed point: powers of two) rounds the weights by GPTQ, and the one whose output error
    is least wins. None for a layer this does not handle."""
    groups = layer_groups(op, attrs, w, x)
    if groups is None:
        return None
    top = qmax(bits, True)
    amax = float(np.abs(w).max())
    if amax <= 0:
        return None
    first = int_scale(amax, bits, True, fixed)
    scales = (first / 2.0 ** np.arange(FIXED_STEPS + 1) if fixed
              else amax * GPTQ_GRID / top)
    hs = [rows.T @ rows / max(len(rows), 1) for _, _, rows in groups]
    best = None
    for scale in scales:
        out = np.empty((w.shape[0], groups[0][0].shape[1]))
        err = 0.0
        for (wg, sl, _), h in zip(groups, hs, strict=True):
            out[sl] = gptq_rows(wg, h, float(scale), top)
            err += output_error(out[sl] - wg, h)
        if best is None or err < best[0]:
            best = (err, out, float(scale))
    _, out, scale = best
    shaped = out.reshape(w.shape) if op == "Conv" or attrs.get("transB", 0) else out.T
    return shaped, scale
