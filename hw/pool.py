# amaranth: UnusedElaboratable=no
"""Pooling: max and average over a sliding window, and global average over the whole image.

Max and average pooling sit on a :class:`~qfab.hw.window.SlidingWindow` in depthwise order
(each group of ``simd`` channels gets its ``kh*kw`` taps in a row) followed by a reducer that
folds those taps into one beat. Average pooling and global average pooling output the window
*sum*; the requantizer after them divides by the window size with dyadic scaling, so no
division is done here.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Mux, Shape, ShapeLike, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2
from qfab.hw._checks import check_count, check_shape, shape_range
from qfab.hw._skid import OutputSkid
from qfab.hw.window import SlidingWindow, im2col_reference

__all__ = ["AvgPool", "GlobalAvgPool", "MaxPool", "avgpool_reference",
           "global_avgpool_reference", "maxpool_reference"]


def _window_taps(x_nhwc, kernel, stride, padding, pad_value) -> np.ndarray:
    taps = im2col_reference(x_nhwc, kernel=kernel, stride=stride, padding=padding,
                            pad_value=pad_value)
    n, oh, ow, _ = taps.shape
    return taps.reshape(n, oh, ow, kernel[0] * kernel[1], -1)


def maxpool_reference(x_nhwc: np.ndarray, *, kernel: tuple[int, int], stride: tuple[int, int],
                      padding: tuple[int, int, int, int], pad_value: int) -> np.ndarray:
    """Max over each window, padding with ``pad_value`` (the element minimum):
    ``(N, OH, OW, C)``."""
    return _window_taps(x_nhwc, kernel, stride, padding, pad_value).max(axis=3)


def avgpool_reference(x_nhwc: np.ndarray, *, kernel: tuple[int, int], stride: tuple[int, int],
                      padding: tuple[int, int, int, int], pad_value: int = 0) -> np.ndarray:
    """Sum over each window, padding counted as ``pad_value``: ``(N, OH, OW, C)``."""
    return _window_taps(x_nhwc, kernel, stride, padding, pad_value).sum(axis=3)


def global_avgpool_reference(x_nhwc: np.ndarray) -> np.ndarray:
    """Per-channel sum over all pixels of each image: ``(N, C)``."""
    return np.asarray(x_nhwc, dtype=np.int64).sum(axis=(1, 2))


def sum_shape(elem_shape: Shape, terms: int) -> Shape:
    """Shape that holds any sum of ``terms`` values of ``elem_shape`` exactly."""
    width = elem_shape.width + ceil_log2(terms)
    return signed(width) if elem_shape.signed else unsigned(width)


class _TapReducer(wiring.Component):
    """Folds every ``taps`` consecutive beats into one beat, element by element, by max or sum."""

    def __init__(self, *, elem_shape: Shape, out_shape: Shape, simd: int, taps: int, op: str):
        self._taps, self._op, self._simd = taps, op, simd
        self._out_shape = out_shape
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(elem_shape, simd))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(out_shape, simd))),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        i, o = self.i_stream, self.o_stream
        acc = Signal(data.ArrayLayout(self._out_shape, self._simd))
        tap = Signal(range(self._taps))
        first, last = tap == 0, tap == self._taps - 1
        # Only the last tap needs the output register free.
        m.d.comb += i.ready.eq(~last | ~o.valid | o.ready)
        with m.If(o.valid & o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(i.valid & i.ready):
            m.d.sync += tap.eq(Mux(last, 0, tap + 1))
            for k in range(self._simd):
                x = i.p[k]
                if self._op == "max":
                    folded = Mux(first | (x > acc[k]), x, acc[k])
                else:
                    folded = Mux(first, 0, acc[k]) + x
                m.d.sync += acc[k].eq(folded)
                with m.If(last):
                    m.d.sync += o.p[k].eq(folded)
            with m.If(last):
                m.d.sync += o.valid.eq(1)
        return m


class _WindowPool(wiring.Component):
    """A depthwise SlidingWindow followed by a tap reducer; see MaxPool and AvgPool."""

    _op = ""

    def __init__(self, *, channels: int, height: int, width: int, kernel: tuple[int, int],
                 stride: tuple[int, int], padding: tuple[int, int, int, int],
                 elem_shape: ShapeLike, simd: int, pad_value: int | None = None,
                 registered_taps: bool = False, registered_ready: bool = False,
                 registered_read: bool = False):
        shape = check_shape("elem_shape", elem_shape)
        self._registered = bool(registered_taps)
        # (The first line of this file silences Amaranth's "never used" warning for a window
        # whose own parameter check fails here; the pool itself still warns as usual.)
        if pad_value is None:
            pad_value = shape_range(shape)[0]
        self._window = SlidingWindow(
            channels=channels, height=height, width=width, kernel=kernel, stride=stride,
            padding=padding, pad_value=pad_value, elem_shape=shape, simd=simd, depthwise=True,
            registered_ready=registered_ready, registered_read=registered_read)
        taps = self._window.kernel[0] * self._window.kernel[1]
        self._out_elem = shape if self._op == "max" else sum_shape(shape, taps)
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(shape, simd))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(self._out_elem, simd))),
        })

    channels = property(lambda self: self._window.channels)
    height = property(lambda self: self._window.height)
    width = property(lambda self: self._window.width)
    kernel = property(lambda self: self._window.kernel)
    stride = property(lambda self: self._window.stride)
    padding = property(lambda self: self._window.padding)
    pad_value = property(lambda self: self._window.pad_value)
    elem_shape = property(lambda self: self._window.elem_shape)
    simd = property(lambda self: self._window.simd)
    out_elem_shape = property(lambda self: self._out_elem)
    window = property(lambda self: self._window)
    registered_taps = property(lambda self: self._registered,
                               doc="Whether a register holds each tap between the window "
                                   "and the reducer.")
    registered_ready = property(lambda self: self._window.registered_ready,
                                doc="Whether the window's handshake flags are flip-flops.")
    registered_read = property(lambda self: self._window.registered_read,
                               doc="Whether the window registers its line buffer's words.")
    line_buffer = property(lambda self: self._window.line_buffer,
                           doc="(depth, width in bits) of the window's line-buffer RAM.")

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """``(out_height, out_width, channels)`` per image."""
        g = self._window.geometry
        return g.out_height, g.out_width, self.channels

    @property
    def latency(self) -> int:
        """Cycles from the input beat that completes the rows the first output row needs to the
        first output beat: the window's latency plus ``kh*kw`` taps folded (and the taps'
        register)."""
        return self._window.latency + self.kernel[0] * self.kernel[1] + self._registered

    @property
    def tensor_cycles(self) -> int:
        """Cycles from the first input transfer to the last output transfer of one image, both
        counted, with no idle input and no back-pressure."""
        return self._window.tensor_cycles + 1 + self._registered

    @property
    def cycles_per_image(self) -> int:
        """Cycles per image at steady state, images back to back."""
        return self._window.cycles_per_image

    @property
    def initiation_interval(self) -> int:
        """Same as :attr:`cycles_per_image`."""
        return self.cycles_per_image

    def cycles(self, images: int) -> int:
        """As :attr:`tensor_cycles` for ``images`` images streamed back to back."""
        return self._window.cycles(images) + 1 + self._registered

    def model(self, x_nhwc: np.ndarray) -> np.ndarray:
        """Exact outputs ``(N, OH, OW, C)`` for images ``(N, H, W, C)``."""
        reference = maxpool_reference if self._op == "max" else avgpool_reference
        return reference(x_nhwc, kernel=self.kernel, stride=self.stride, padding=self.padding,
                         pad_value=self.pad_value)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.window = self._window
        m.submodules.reduce = reduce = _TapReducer(
            elem_shape=self.elem_shape, out_shape=self._out_elem, simd=self.simd,
            taps=self.kernel[0] * self.kernel[1], op=self._op)
        wiring.connect(m, wiring.flipped(self.i_stream), self._window.i_stream)
        taps, into = self._window.o_stream, reduce.i_stream
        if self._registered:
            # the window's line-buffer read ends in this register, not in the compare, and
            # its spare makes the window's ready a register too (no path from the reducer's)
            skid = OutputSkid(m, into, data.ArrayLayout(self.elem_shape, self.simd))
            m.d.comb += taps.ready.eq(skid.advance)
            skid.push(taps.valid, taps.payload)
        else:
            wiring.connect(m, taps, into)
        wiring.connect(m, reduce.o_stream, wiring.flipped(self.o_stream))
        return m


class MaxPool(_WindowPool):
    """Max pooling over ``kernel`` windows of an NHWC stream; padding is the element minimum.

    Parameters
    ----------
    channels, height, width : int
        Input shape per image, channels last.
    kernel, stride : (int, int)
        Window size and step.
    padding : (int, int, int, int)
        Top, left, bottom, right.
    elem_shape : ShapeLike
        Element shape, in and out.
    simd : int
        Channels a beat, in and out; divides ``channels``.
    registered_taps : bool
        A register with a spare (:class:`~qfab.hw._skid.OutputSkid`) between the window and
        the reducer, a cycle more (for a fast clock: the window's block RAM read then ends
        in it, not in the compare, and no ``ready`` path runs through the pool).
    registered_ready : bool
        The window's input ``ready`` and "rows available" as flip-flops (see
        :class:`~qfab.hw.window.SlidingWindow`); the same cycles.
    registered_read : bool
        The window's line-buffer words registered before its padding select, a cycle more
        (:class:`~qfab.hw.window.SlidingWindow`).

    Members
    -------
    i_stream : In(stream.Signature(data.ArrayLayout(elem_shape, simd)))
    o_stream : Out(stream.Signature(data.ArrayLayout(elem_shape, simd)))
        Pooled pixels, NHWC, ``simd`` channels a beat.
    """

    _op = "max"

    def __init__(self, *, channels: int, height: int, width: int, kernel: tuple[int, int],
                 stride: tuple[int, int], padding: tuple[int, int, int, int],
                 elem_shape: ShapeLike, simd: int, registered_taps: bool = False,
                 registered_ready: bool = False, registered_read: bool = False):
        super().__init__(channels=channels, height=height, width=width, kernel=kernel,
                         stride=stride, padding=padding, elem_shape=elem_shape, simd=simd,
                         registered_taps=registered_taps, registered_ready=registered_ready,
                         registered_read=registered_read)


class AvgPool(_WindowPool):
    """Average pooling that outputs the window *sum*; the requantizer after it divides by
    ``kh*kw`` with dyadic scaling. Padding elements count as ``pad_value`` (the input zero
    point, so that a padded tap adds zero in real terms, as ONNX's ``count_include_pad=1``);
    for ``count_include_pad=0`` the compiler must scale border pixels itself.

    Parameters
    ----------
    channels, height, width, kernel, stride, padding, elem_shape, simd, registered_taps,
    registered_ready, registered_read
        As for :class:`MaxPool`.
    pad_value : int
        Value of padding elements, default 0.

    Members
    -------
    i_stream : In(stream.Signature(data.ArrayLayout(elem_shape, simd)))
    o_stream : Out(stream.Signature(data.ArrayLayout(out_elem_shape, simd)))
        Window sums, ``out_elem_shape`` wide enough for ``kh*kw`` terms.
    """

    _op = "sum"

    def __init__(self, *, channels: int, height: int, width: int, kernel: tuple[int, int],
                 stride: tuple[int, int], padding: tuple[int, int, int, int],
                 elem_shape: ShapeLike, simd: int, pad_value: int = 0,
                 registered_taps: bool = False, registered_ready: bool = False,
                 registered_read: bool = False):
        super().__init__(channels=channels, height=height, width=width, kernel=kernel,
                         stride=stride, padding=padding, elem_shape=elem_shape, simd=simd,
                         pad_value=pad_value, registered_taps=registered_taps,
                         registered_ready=registered_ready, registered_read=registered_read)


class GlobalAvgPool(wiring.Component):
    """Per-channel sum over all ``height*width`` pixels of each image (global average pooling
    before the requantizer divides by ``height*width`` with dyadic scaling).

    The running sums of the ``channels // simd`` channel groups live in a small memory read
    one beat ahead; the last pixel's beats go straight to the output, so a new image may
    follow without a gap.

    Parameters
    ----------
    channels, height, width : int
        Input shape per image, channels last.
    elem_shape : ShapeLike
        Input element shape.
    simd : int
        Channels a beat, in and out; divides ``channels``.

    Members
    -------
    i_stream : In(stream.Signature(data.ArrayLayout(elem_shape, simd)))
    o_stream : Out(stream.Signature(data.ArrayLayout(acc_shape, simd)))
        ``channels // simd`` beats per image.
    """

    def __init__(self, *, channels: int, height: int, width: int, elem_shape: ShapeLike,
                 simd: int):
        self._elem_shape = check_shape("elem_shape", elem_shape)
        self._simd = check_count("simd", simd)
        if check_count("channels", channels) % simd:
            raise ValueError(f"simd {simd!r} does not divide channels {channels!r}")
        self._channels = channels
        self._height = check_count("height", height)
        self._width = check_count("width", width)
        self._acc_shape = sum_shape(self._elem_shape, height * width)
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(self._elem_shape, simd))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(self._acc_shape, simd))),
        })

    channels = property(lambda self: self._channels)
    height = property(lambda self: self._height)
    width = property(lambda self: self._width)
    elem_shape = property(lambda self: self._elem_shape)
    simd = property(lambda self: self._simd)
    acc_shape = property(lambda self: self._acc_shape)

    @property
    def sum_memory(self) -> tuple[int, int]:
        """(depth, width in bits) of the running-sum RAM: one word per channel group."""
        return self._channels // self._simd, self._simd * self._acc_shape.width

    @property
    def latency(self) -> int:
        """Cycles from a beat of the last pixel to its channel group's sum."""
        return 1

    @property
    def cycles_per_image(self) -> int:
        """Input beats per image; one a cycle at steady state."""
        return self._height * self._width * self._channels // self._simd

    @property
    def tensor_cycles(self) -> int:
        """Cycles from the first input transfer to the last output transfer of one image."""
        return self.cycles(1)

    @property
    def initiation_interval(self) -> int:
        """Same as :attr:`cycles_per_image`."""
        return self.cycles_per_image

    def cycles(self, images: int) -> int:
        """As :attr:`tensor_cycles` for ``images`` images streamed back to back."""
        return check_count("images", images) * self.cycles_per_image + self.latency

    def model(self, x_nhwc: np.ndarray) -> np.ndarray:
        """Exact per-channel sums ``(N, C)`` for images ``(N, H, W, C)``."""
        return global_avgpool_reference(x_nhwc)

    def elaborate(self, platform) -> Module:
        m = Module()
        i, o = self.i_stream, self.o_stream
        groups = self._channels // self._simd
        pixels = self._height * self._width
        m.submodules.sums = sums = Memory(
            shape=data.ArrayLayout(self._acc_shape, self._simd), depth=groups, init=[])
        wr = sums.write_port()
        rd = sums.read_port(domain="sync", transparent_for=(wr,))

        group = Signal(range(groups))
        pixel = Signal(range(pixels))
        first, last = pixel == 0, pixel == pixels - 1
        take = i.valid & i.ready
        next_group = Mux(group == groups - 1, 0, group + 1)
        m.d.comb += [
            i.ready.eq(~last | ~o.valid | o.ready),
            # Addressed one beat ahead so the group's running sum is on rd.data when its beat
            # arrives; transparency covers one group written and read back to back.
            rd.addr.eq(Mux(take, next_group, group)),
            wr.addr.eq(group),
            wr.en.eq(take & ~last),
        ]
        for k in range(self._simd):
            total = Mux(first, 0, rd.data[k]) + i.p[k]
            m.d.comb += wr.data[k].eq(total)
            with m.If(take & last):
                m.d.sync += o.p[k].eq(total)
        with m.If(o.valid & o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(take):
            m.d.sync += group.eq(next_group)
            with m.If(group == groups - 1):
                m.d.sync += pixel.eq(Mux(last, 0, pixel + 1))
            with m.If(last):
                m.d.sync += o.valid.eq(1)
        return m
