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

import math
import threading

import numpy as np
from qfab.sim.reference_products import F32_EXACT, _scratch

# Taps (K + 1) up to which a conv's product runs in float64 with the requantizer's factor
# folded into its weights: a float32 product and a widening, scaling pass cost more there.
FOLD_TAPS = 64


def prepare_weights(p) -> None:
    """The conv's weights as [M, K + 1] with ``c`` last: float32 as they are, and float64
    times each channel's factor (``+ 0.0``: a zero weight is +0.0, never -0.0)."""
    w = np.hstack([p.m.w.reshape(p.m.w.shape[0], -1), p.c[:, None]])
    p.w_f32 = np.ascontiguousarray(w, np.float32)
    p.w_folded = np.ascontiguousarray(w.astype(np.float64) * p.factor[:, None] + 0.0)
    p.fold = w.shape[1] <= FOLD_TAPS
    p.factor_column = p.factor[:, None]


class _Chunk:
    """The working arrays of ``k`` images through one conv geometry, and their views: the
    padded input, the windows' taps-first columns ending in a row of ones, and the product's
    output. A small chunk's arrays are its own, kept by the thread, the padding's zeros and
    the ones written once; a larger one's are the thread's shared working arrays."""

    def __init__(self, key: tuple):
        k, (c, h, w), (m, oh, ow), (kh, kw), (sh, sw), (dh, dw), pads, dtype = key
        top, left, bottom, right = pads
        taps, rows = c * kh * kw, k * oh * ow
        padded = (k, c, h + top + bottom, w + left + right)
        self.kept = math.prod(padded) + (taps + 1) * rows + 2 * m * rows <= KEEP_CHUNK_ELEMENTS
        array = _own if self.kept else _scratch
        self.xs = array("xs", padded, dtype)
        self.xs.fill(0)
        self.interior = self.xs[:, :, top:top + h, left:left + w]
        cols = array("cols", (taps + 1, k, oh * ow), dtype)
        cols[taps] = 1
        s_n, s_c, s_h, s_w = self.xs.strides
        self.windows = np.ndarray((c, kh, kw, k, oh, ow), dtype, self.xs,
                                  strides=(s_c, s_h * dh, s_w * dw, s_n, s_h * sh, s_w * sw))
        self.taps = cols[:taps].reshape(c, kh, kw, k, oh, ow)
        self.cols = cols.reshape(taps + 1, rows)
        self.u = array("u", (m, rows), np.float64)
        self.acc = None if dtype is np.float64 else array("acc", (m, rows), dtype)
        self.quotients = self.u.reshape(m, k, oh * ow)


def _own(name: str, shape: tuple, dtype) -> np.ndarray:
    return np.empty(shape, dtype)


_CHUNKS = threading.local()
KEEP_CHUNKS = 8  # geometries a thread keeps the working arrays of
KEEP_CHUNK_ELEMENTS = 1 << 17  # the largest chunk kept (elements of its arrays)


def _chunk(key: tuple) -> _Chunk:
    """The thread's working arrays for ``key``, kept for the last few small geometries run."""
    kept = getattr(_CHUNKS, "kept", None)
    if kept is None:
        kept = _CHUNKS.kept = {}
    chunk = kept.pop(key, None) or _Chunk(key)
    if chunk.kept:
        kept[key] = chunk  # the newest last
        while len(kept) > KEEP_CHUNKS:
            del kept[next(iter(kept))]
    return chunk


def conv_requant(p, x: np.ndarray, zero, acc_bound: int, out: np.ndarray, finish,
                 chunk_elements: int) -> None:
    """``out`` [N, M, OH, OW] = the requantized (or dequantized) conv of ``x`` less ``zero``,
    ``chunk_elements`` outputs at a time; ``finish(u, out_chunk)`` rounds the quotients."""
    folded = p.fold or acc_bound + p.c_max >= F32_EXACT
    dtype = np.float64 if folded else np.float32
    n = x.shape[0]
    m, oh, ow = out.shape[1:]
    step = max(1, chunk_elements // (m * oh * ow))
    for first in range(0, n, step):
        k = min(step, n - first)
        ch = _chunk((k, x.shape[1:], out.shape[1:], p.kernel, p.strides, p.dilations, p.pads,
                     dtype))
        # In the input's integer type, then stored: below 2**24 (float32) or 2**53, exact.
        np.subtract(x[first:first + k], zero, out=ch.interior, casting="unsafe")
        ch.taps[...] = ch.windows
        if folded:
            np.matmul(p.w_folded, ch.cols, out=ch.u)
        else:
            np.multiply(np.matmul(p.w_f32, ch.cols, out=ch.acc), p.factor_column, out=ch.u)
        # One product for the chunk (a product an image took half as long again): its
        # output is channels first, stored into the images' NCHW as [M, k, OH * OW].
        finish(ch.quotients, out[first:first + k].reshape(k, m, oh * ow).transpose(1, 0, 2))
