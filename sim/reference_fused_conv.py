"""A conv of one group and the requantizer after it (and the dequantizer after that, where it
is the requantizer's only reader), by im2col in floating point, exact by the bounds of
:mod:`qfab.sim.reference_fused`.

Layout: a chunk of images' windows are gathered taps first, ``cols [K + 1, k * OH * OW]`` (K
= C * kh * kw, in the weights' own (C, kh, kw) order, then a row of ones), so the gather
copies runs of OW contiguous inputs (a tap at a time), and one product, ``[M, K + 1] @
cols``, leaves the output channels first, stored into NCHW as the graph has it.

Where the layer has few taps (K + 1 <= :data:`FOLD_TAPS`), the weights are prepared in
float64 already times each channel's ``mult * 2**-shift``, and the row of ``c`` too: every
product and partial sum is then an integer below ``(B + max|c|) * max(mult)`` times
``2**-shift``, below 2**53 by the bound checked, so exact; the product is the quotient to
round, with no pass to widen and scale the accumulators. With many taps the product runs in
float32 (twice as fast as float64) where the accumulator's bound allows, then is scaled in one
float64 pass.
"""

from __future__ import annotations

import numpy as np
from qfab.sim.reference_products import _scratch

# Taps (K + 1) up to which a conv's product runs in float64 with the requantizer's factor
# folded into its weights: a float32 product and a widening, scaling pass cost more there.
FOLD_TAPS = 64
_F32_EXACT = 2**24


def prepare_weights(p) -> None:
    """The conv's weights as [M, K + 1] with ``c`` last: float32 as they are, and float64
    times each channel's factor (``+ 0.0``: a zero weight is +0.0, never -0.0)."""
    w = np.hstack([p.m.w.reshape(p.m.w.shape[0], -1), p.c[:, None]])
    p.w_f32 = np.ascontiguousarray(w, np.float32)
    p.w_folded = np.ascontiguousarray(w.astype(np.float64) * p.factor[:, None] + 0.0)
    p.fold = w.shape[1] <= FOLD_TAPS
    p.factor_column = p.factor[:, None]


def conv_requant(p, x: np.ndarray, zero, acc_bound: int, out: np.ndarray, finish) -> None:
    """``out`` [N, M, OH, OW] = the requantized (or dequantized) conv of ``x`` less ``zero``,
    a chunk of images at a time; ``finish(u, out_chunk)`` rounds the quotients ``u``."""
    from qfab.sim.reference_fused import CHUNK_ELEMENTS

    folded = p.fold or acc_bound + p.c_max >= _F32_EXACT
    dtype = np.float64 if folded else np.float32
    n, c, h, w = x.shape
    m, oh, ow = out.shape[1:]
    taps = p.w_f32.shape[1] - 1
    (kh, kw), (sh, sw), (dh, dw) = p.kernel, p.strides, p.dilations
    top, left, bottom, right = p.pads
    step = max(1, CHUNK_ELEMENTS // (m * oh * ow))
    for first in range(0, n, step):
        k = min(step, n - first)
        xs = _scratch("xs", (k, c, h + top + bottom, w + left + right), dtype)
        if top or left or bottom or right:
            xs.fill(0)  # a shared working array: its border may hold another layer's values
        # In the input's integer type, then stored: below 2**24 (float32) or 2**53, exact.
        np.subtract(x[first:first + k], zero, out=xs[:, :, top:top + h, left:left + w],
                    casting="unsafe")
        cols = _scratch("cols", (taps + 1, k, oh * ow), dtype)
        cols[taps] = 1
        s_n, s_c, s_h, s_w = xs.strides
        windows = np.ndarray((c, kh, kw, k, oh, ow), dtype, xs,
                             strides=(s_c, s_h * dh, s_w * dw, s_n, s_h * sh, s_w * sw))
        cols[:taps].reshape(c, kh, kw, k, oh, ow)[...] = windows
        cols = cols.reshape(taps + 1, k * oh * ow)
        if folded:
            u = np.matmul(p.w_folded, cols, out=_scratch("u", (m, cols.shape[1]), np.float64))
        else:
            acc = np.matmul(p.w_f32, cols, out=_scratch("acc", (m, cols.shape[1]), np.float32))
            u = np.multiply(acc, p.factor_column, out=_scratch("u", acc.shape, np.float64))
        # One product for the chunk (a product an image took half as long again): its
        # output is channels first, stored into the images' NCHW as [M, k, OH * OW].
        finish(u.reshape(m, k, oh * ow), out[first:first + k].reshape(k, m, oh * ow)
               .transpose(1, 0, 2))
