"""Depthwise MAC: the compute half of a depthwise convolution, fed by a
:class:`~qfab.hw.window.SlidingWindow` in depthwise order.

Each channel has its own ``kh*kw`` weights; ``simd`` channels are worked on in parallel,
``columns`` taps a cycle, so a pixel takes ``channels // simd * kh * kw // columns``
cycles. The output is the exact accumulator per channel; bias, zero-point corrections and
requantization are the next stage's job (the compiler folds ``-zp_x * sum(w)`` into the
requantizer's bias).
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Mux, Shape, ShapeLike, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from qfab.hw._checks import check_count, check_shape, shape_range
from qfab.hw.window import im2col_reference

__all__ = ["DepthwiseUnit", "depthwise_acc_shape", "depthwise_conv_reference",
           "depthwise_mac_reference"]


def depthwise_mac_reference(windows: np.ndarray, weights: np.ndarray, simd: int) -> np.ndarray:
    """Accumulators ``(..., C)`` for window vectors ``(..., kh*kw*C)`` in depthwise stream
    order ``(c // simd, tap, c % simd)`` and weights ``(C, kh*kw)``."""
    w = np.asarray(weights, dtype=np.int64)
    channels, taps = w.shape
    x = np.asarray(windows, dtype=np.int64)
    lead = x.shape[:-1]
    x = x.reshape(*lead, channels // simd, taps, simd).swapaxes(-1, -2)
    return (x * w.reshape(channels // simd, simd, taps)).sum(axis=-1).reshape(*lead, channels)


def depthwise_conv_reference(
    x_nhwc: np.ndarray, weights: np.ndarray, *, kernel: tuple[int, int],
    stride: tuple[int, int], padding: tuple[int, int, int, int], pad_value: int,
) -> np.ndarray:
    """Depthwise convolution accumulators ``(N, OH, OW, C)``: for each channel ``c``,
    ``sum over (ky, kx) of x_padded[oy*sh+ky, ox*sw+kx, c] * weights[c, ky*kw+kx]``."""
    taps = im2col_reference(x_nhwc, kernel=kernel, stride=stride, padding=padding,
                            pad_value=pad_value)
    n, oh, ow, _ = taps.shape
    taps = taps.reshape(n, oh, ow, kernel[0] * kernel[1], -1)
    return np.einsum("nhwtc,ct->nhwc", taps, np.asarray(weights, dtype=np.int64))


def depthwise_acc_shape(weights: np.ndarray, in_shape: ShapeLike) -> Shape:
    """The narrowest shape holding every sum of ``in_shape`` inputs times each channel's
    ``weights`` (``(channels, taps)``) exactly: the :class:`DepthwiseUnit`'s output shape."""
    w = np.asarray(weights, dtype=np.int64)
    x_lo, x_hi = shape_range(Shape.cast(in_shape))
    products = np.stack([w * x_lo, w * x_hi])
    lo = int(products.min(axis=0).sum(axis=1).min())
    hi = int(products.max(axis=0).sum(axis=1).max())
    if lo >= 0:
        return unsigned(max(1, hi.bit_length()))
    return signed(max(lo.bit_length(), (-lo - 1).bit_length(), hi.bit_length()) + 1)


class DepthwiseUnit(wiring.Component):
    """Per-channel multiply-accumulate over each window's ``taps`` beats.

    Parameters
    ----------
    channels : int
        Channels per pixel.
    taps : int
        Window taps per channel (``kh * kw``).
    weights : array of int, shape (channels, taps)
        Constant weights, held in a ROM of ``channels // simd * taps`` words.
    in_shape, weight_shape : ShapeLike
        Element shapes of the activations and the weights (every weight must fit).
    simd : int
        Channels a beat, in and out; divides ``channels``.
    columns : int
        Taps a beat (default 1; divides ``taps``): ``columns`` neighbouring taps of the
        ``simd`` channels, as a depthwise :class:`SlidingWindow` with as many ``taps`` (kernel
        columns) emits them, so ``simd * columns`` products a cycle.

    Members
    -------
    i_stream : In(stream.Signature(data.ArrayLayout(in_shape, simd * columns)))
        Window taps in depthwise order, as a depthwise :class:`SlidingWindow` emits them.
    o_stream : Out(stream.Signature(data.ArrayLayout(acc_shape, simd)))
        One beat of ``simd`` accumulators per channel group and pixel; ``acc_shape`` is the
        narrowest shape that holds every possible sum exactly for these weights.
    """

    def __init__(self, *, channels: int, taps: int, weights, in_shape: ShapeLike,
                 weight_shape: ShapeLike, simd: int, columns: int = 1):
        self._in_shape = check_shape("in_shape", in_shape)
        self._weight_shape = check_shape("weight_shape", weight_shape)
        self._simd = check_count("simd", simd)
        if check_count("channels", channels) % simd:
            raise ValueError(f"simd {simd!r} does not divide channels {channels!r}")
        self._channels, self._taps = channels, check_count("taps", taps)
        if taps % check_count("columns", columns):
            raise ValueError(f"columns {columns!r} does not divide taps {taps!r}")
        self._columns = columns
        w = np.asarray(weights)
        if w.shape != (channels, taps) or not np.issubdtype(w.dtype, np.integer):
            raise ValueError(f"weights must be integers of shape {(channels, taps)}, "
                             f"not {w.dtype} {w.shape}")
        w_lo, w_hi = shape_range(self._weight_shape)
        if w.size and (w.min() < w_lo or w.max() > w_hi):
            bad = w.min() if w.min() < w_lo else w.max()
            raise ValueError(f"weight {int(bad)!r} does not fit weight_shape {weight_shape!r}")
        self._weights = w.astype(np.int64)
        self._acc_shape = self._exact_acc_shape()
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(self._in_shape, simd * columns))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(self._acc_shape, simd))),
        })

    channels = property(lambda self: self._channels)
    taps = property(lambda self: self._taps)
    weights = property(lambda self: self._weights.copy())
    in_shape = property(lambda self: self._in_shape)
    weight_shape = property(lambda self: self._weight_shape)
    acc_shape = property(lambda self: self._acc_shape)
    simd = property(lambda self: self._simd)
    columns = property(lambda self: self._columns)

    def _exact_acc_shape(self) -> Shape:
        return depthwise_acc_shape(self._weights, self._in_shape)

    @property
    def weight_memory(self) -> tuple[int, int]:
        """(depth, width in bits) of the weight ROM: ``channels // simd * taps // columns``
        words of ``simd * columns`` weights."""
        return self.cycles_per_pixel, self._simd * self._columns * self._weight_shape.width

    @property
    def multiplier_count(self) -> int:
        """Products formed per cycle: ``simd * columns``."""
        return self._simd * self._columns

    @property
    def cycles_per_pixel(self) -> int:
        """Input beats (and cycles at steady state) per pixel: ``channels // simd * taps //
        columns``."""
        return self._channels // self._simd * self._taps // self._columns

    @property
    def initiation_interval(self) -> int:
        return self.cycles_per_pixel

    @property
    def latency(self) -> int:
        """Cycles from a channel group's last tap to its accumulators being offered."""
        return 1

    def cycles(self, pixels: int) -> int:
        """Cycles from the first input transfer to the last output transfer, both counted,
        for ``pixels`` pixels with no idle input and no back-pressure."""
        return check_count("pixels", pixels) * self.cycles_per_pixel + self.latency

    def model(self, windows: np.ndarray) -> np.ndarray:
        """Exact accumulators ``(..., C)`` for window vectors ``(..., taps*C)`` in depthwise
        stream order."""
        return depthwise_mac_reference(windows, self._weights, self._simd)

    def elaborate(self, platform) -> Module:
        m = Module()
        i, o = self.i_stream, self.o_stream
        simd, cols = self._simd, self._columns
        taps = self._taps // cols  # beats a channel group
        groups = self._channels // simd
        words = groups * taps
        # ROM word (group, beat) holds the weights of that group's simd channels for the
        # beat's taps, tap-major as the beat's elements.
        rom_layout = data.ArrayLayout(self._weight_shape, simd * cols)
        init = [[int(self._weights[g * simd + k, t * cols + j]) for j in range(cols)
                 for k in range(simd)] for g in range(groups) for t in range(taps)]
        m.submodules.rom = rom = Memory(shape=rom_layout, depth=words, init=init)
        rd = rom.read_port(domain="sync")

        word = Signal(range(words))
        tap = Signal(range(taps))
        first, last = tap == 0, tap == taps - 1
        take = i.valid & i.ready
        next_word = Mux(word == words - 1, 0, word + 1)
        acc = Signal(data.ArrayLayout(self._acc_shape, simd))
        # The ROM's output register holds the first word only one cycle after reset.
        primed = Signal()
        m.d.sync += primed.eq(1)
        m.d.comb += [
            i.ready.eq(primed & (~last | ~o.valid | o.ready)),
            # Addressed one beat ahead so the weights are on rd.data when their tap arrives.
            rd.addr.eq(Mux(take, next_word, word)),
        ]
        with m.If(o.valid & o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(take):
            m.d.sync += [word.eq(next_word), tap.eq(Mux(last, 0, tap + 1))]
            for k in range(simd):
                total = Mux(first, 0, acc[k])
                for j in range(cols):
                    total = total + i.p[j * simd + k] * rd.data[j * simd + k]
                m.d.sync += acc[k].eq(total)
                with m.If(last):
                    m.d.sync += o.p[k].eq(total)
            with m.If(last):
                m.d.sync += o.valid.eq(1)
        return m
