"""Sliding-window generator: turns an NHWC pixel stream into the window vectors of a
convolution or pooling layer (im2col on the fly), from line buffers in block RAM.

Rows of the input are written into a ring of ``R`` row slots (``R`` the power of two at or
above ``kh + sh``, so the next output row's input can arrive while the current one is read
out, and above the rows an image's last output row and the next image's first hold
together, so the next image arrives while this one ends: ``WindowGeometry.row_slots``).
The reader walks the output pixels and, for each, the window taps; taps that fall in the
padding are produced from ``pad_value`` without storing anything. Reader and writer are
coupled by two row counters only: the reader starts an output row once every input row it
needs is complete, and releases the rows the next output row no longer needs. With ``taps``
above 1 a beat carries that many neighbouring kernel columns, each read by a port of its own,
so that a layer with few channels can feed a wide matrix-vector unit at its pace. With
``registered_read`` the words read go through a register before the padding is chosen, a
cycle more, so that a block RAM's output register can hold them (``qfab build`` moves that
register into ECP5's DP16KD: its data then leaves 1 ns after the clock, not 5.8).
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, ShapeLike, Signal, Value, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2
from qfab.hw._checks import check_count, check_int, check_pair, check_shape, shape_range
from qfab.hw._window_flags import RowFlags, StepFlags
from qfab.hw._window_timing import WindowGeometry, window_cycles

__all__ = ["SlidingWindow", "WindowGeometry", "im2col_reference", "pad_reference"]


def pad_reference(x_nhwc: np.ndarray, padding: tuple[int, int, int, int],
                  pad_value: int) -> np.ndarray:
    """``x_nhwc`` with ``padding`` (top, left, bottom, right) rows and columns of
    ``pad_value`` around each image."""
    top, left, bottom, right = padding
    return np.pad(np.asarray(x_nhwc, dtype=np.int64),
                  ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=pad_value)


def im2col_reference(
    x_nhwc: np.ndarray, *, kernel: tuple[int, int], stride: tuple[int, int],
    padding: tuple[int, int, int, int], pad_value: int, simd: int = 1, depthwise: bool = False,
) -> np.ndarray:
    """The window vectors :class:`SlidingWindow` emits, as ``(N, OH, OW, kh*kw*C)``.

    The last axis is in stream order: ``(ky, kx, c)`` normally; with ``depthwise``,
    ``(c // simd, ky, kx, c % simd)``, so that each group of ``simd`` channels gets its
    ``kh*kw`` taps in a row.
    """
    kh, kw = kernel
    sh, sw = stride
    xp = pad_reference(x_nhwc, padding, pad_value)
    n, hp, wp, c = xp.shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    taps = np.empty((n, oh, ow, kh, kw, c), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            taps[:, :, :, ky, kx, :] = xp[:, ky:ky + sh * (oh - 1) + 1:sh,
                                          kx:kx + sw * (ow - 1) + 1:sw, :]
    if depthwise:
        taps = taps.reshape(n, oh, ow, kh, kw, c // simd, simd).transpose(0, 1, 2, 5, 3, 4, 6)
    return taps.reshape(n, oh, ow, kh * kw * c)


class SlidingWindow(wiring.Component):
    """Window vectors of a 2-D convolution or pooling, from an NHWC stream.

    For each output pixel, in row-major order, emits the ``kh*kw*channels`` elements under the
    kernel as beats of ``simd * taps`` elements, in order ``(ky, kx, c)``
    (``depthwise=False``) or ``(c // simd, ky, kx, c % simd)`` (``depthwise=True``, for a
    depthwise MAC or a pooling reducer). Dilation 1. Images may follow one another without a
    gap.

    Parameters
    ----------
    channels, height, width : int
        Input tensor shape (per image), channels last.
    kernel : (int, int)
        Kernel height and width.
    stride : (int, int)
        Vertical and horizontal stride.
    padding : (int, int, int, int)
        Padding rows/columns at the top, left, bottom and right.
    pad_value : int
        Value of padding elements (the input zero point; the minimum for max pooling).
    elem_shape : ShapeLike
        Element shape (``signed(n)`` or ``unsigned(n)``).
    simd : int
        Channels a beat, in and out; must divide ``channels``.
    depthwise : bool
        Output order for depthwise consumers (see above).
    taps : int
        Kernel columns an output beat carries (default 1): ``(kx, c)`` for ``taps``
        neighbouring ``kx``, the stream order unchanged. Above 1 it must divide ``kw``, and
        without ``depthwise`` ``simd`` must equal ``channels`` (a beat whole pixels); the
        line buffer then has ``taps`` read ports.
    registered_ready : bool
        Keep the input ``ready`` ("a row slot is free") and the reader's "the rows of its
        output row are written" as flip-flops, set from the counters' next values and tables
        of the output row (:class:`~qfab.hw._window_flags.RowFlags`), rather than comparing
        the row counters in the cycle, and the reader's counters' carries as flip-flops
        set a step ahead (:class:`~qfab.hw._window_flags.StepFlags`): the same cycles, no
        arithmetic between those flip-flops and the blocks around, and the output's
        ``ready`` a gate or two from the counters and the rows written ahead.
    registered_read : bool
        A register straight after the line buffer's read ports (nothing between them, so
        that synthesis may put it in the block RAM), the padding chosen after it: a cycle
        more of latency, the same pace.

    Members
    -------
    i_stream : In(stream.Signature(data.ArrayLayout(elem_shape, simd)))
    o_stream : Out(stream.Signature(data.ArrayLayout(elem_shape, simd * taps)))
    """

    def __init__(self, *, channels: int, height: int, width: int, kernel: tuple[int, int],
                 stride: tuple[int, int], padding: tuple[int, int, int, int], pad_value: int,
                 elem_shape: ShapeLike, simd: int, depthwise: bool = False, taps: int = 1,
                 registered_ready: bool = False, registered_read: bool = False):
        self._elem_shape = check_shape("elem_shape", elem_shape)
        simd = check_count("simd", simd)
        if check_count("channels", channels) % simd:
            raise ValueError(f"simd {simd!r} does not divide channels {channels!r}")
        lo, hi = shape_range(self._elem_shape)
        if not lo <= check_int("pad_value", pad_value) <= hi:
            raise ValueError(f"pad_value {pad_value!r} does not fit elem_shape {elem_shape!r}")
        taps = check_count("taps", taps)
        if taps > 1 and (check_pair("kernel", kernel, 2, 1)[1] % taps
                         or (simd != channels and not depthwise)):
            raise ValueError(f"taps {taps!r} needs a kernel width it divides (not "
                             f"{kernel!r}) and, unless depthwise, simd equal to channels")
        self._geom = WindowGeometry(
            height=check_count("height", height), width=check_count("width", width),
            kernel=check_pair("kernel", kernel, 2, 1), stride=check_pair("stride", stride, 2, 1),
            padding=check_pair("padding", padding, 4, 0), beats_per_pixel=channels // simd,
            taps=taps)
        g = self._geom
        if g.out_height < 1 or g.out_width < 1:
            raise ValueError(f"kernel {kernel!r} is larger than the padded input "
                             f"{g.height + g.pad_top + g.pad_bottom}x"
                             f"{g.width + g.pad_left + g.pad_right}")
        self._channels, self._simd = channels, simd
        self._pad_value = pad_value
        self._depthwise = bool(depthwise)
        self._registered_ready = bool(registered_ready)
        self._registered_read = bool(registered_read)
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(self._elem_shape, simd))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(self._elem_shape, simd * taps)))})

    channels = property(lambda self: self._channels)
    height = property(lambda self: self._geom.height)
    width = property(lambda self: self._geom.width)
    kernel = property(lambda self: self._geom.kernel)
    stride = property(lambda self: self._geom.stride)
    padding = property(lambda self: self._geom.padding)
    pad_value = property(lambda self: self._pad_value)
    elem_shape = property(lambda self: self._elem_shape)
    simd = property(lambda self: self._simd)
    depthwise = property(lambda self: self._depthwise)
    taps = property(lambda self: self._geom.taps)
    registered_ready = property(lambda self: self._registered_ready)
    registered_read = property(lambda self: self._registered_read)
    geometry = property(lambda self: self._geom)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """``(out_height, out_width, kh*kw*channels)`` per image."""
        kh, kw = self._geom.kernel
        return self._geom.out_height, self._geom.out_width, kh * kw * self._channels

    @property
    def row_slots(self) -> int:
        """Input rows the line buffer holds (a power of two >= kh + sh)."""
        return self._geom.row_slots

    @property
    def line_buffer(self) -> tuple[int, int]:
        """(depth, width in bits) of the line-buffer RAM: ``row_slots * width * channels //
        simd`` words of ``simd`` elements (read by ``taps`` ports)."""
        g = self._geom
        return g.row_slots * g.width * g.beats_per_pixel, self._simd * self._elem_shape.width

    @property
    def latency(self) -> int:
        """Cycles from the input beat that completes the last row an output row needs to the
        first beat of that output row."""
        return 2 + self._registered_read

    @property
    def tensor_cycles(self) -> int:
        """Cycles from the first input transfer to the last output transfer of one image, both
        counted, with no idle input and no back-pressure."""
        return self.cycles(1)

    @property
    def cycles_per_image(self) -> int:
        """Cycles per image at steady state, images back to back (constant from the second
        image on: the reader then waits at each image start for the same rows)."""
        return window_cycles(self._geom, 3) - window_cycles(self._geom, 2)

    @property
    def initiation_interval(self) -> int:
        """Same as :attr:`cycles_per_image`."""
        return self.cycles_per_image

    def model(self, x_nhwc: np.ndarray) -> np.ndarray:
        """Exact window vectors ``(N, OH, OW, kh*kw*C)``, in stream order, for images
        ``(N, H, W, C)`` (``taps`` groups neighbouring beats, leaving the order as it is)."""
        return im2col_reference(x_nhwc, kernel=self.kernel, stride=self.stride,
                                padding=self.padding, pad_value=self._pad_value,
                                simd=self._simd, depthwise=self._depthwise)

    def cycles(self, images: int) -> int:
        """As :attr:`tensor_cycles` for ``images`` images streamed back to back."""
        return window_cycles(self._geom, check_count("images", images)) + self._registered_read

    def elaborate(self, platform) -> Module:
        m = Module()
        g = self._geom
        kh, kw = g.kernel
        sh, sw = g.stride
        pad_top, pad_left = g.pad_top, g.pad_left
        height, width, per_pixel = g.height, g.width, g.beats_per_pixel
        slots = g.row_slots
        row_beats = width * per_pixel
        i, o = self.i_stream, self.o_stream

        # A read never needs a word written in the same cycle (only a tap in the padding,
        # whose word is dropped, may address the row being written): with a registered read,
        # Yosys is told so (``no_rw_check``), or its logic for that case would stand between
        # the block RAM's read data and the register.
        m.submodules.lines = lines = Memory(
            shape=data.ArrayLayout(self._elem_shape, self._simd), depth=slots * row_beats,
            init=[], attrs={"no_rw_check": 1} if self._registered_read else None)
        wr = lines.write_port()
        taps = g.taps
        rds = [lines.read_port(domain="sync") for _ in range(taps)]

        # Row counters run modulo 2**bits; differences are read as signed, because the reader
        # may release trailing rows (below no window) before the writer has written them.
        bits = ceil_log2(height + g.pad_top + g.pad_bottom + slots + 1) + 2
        written = Signal(bits)     # rows completely written, over all images
        released = Signal(bits)    # rows the reader no longer needs
        base = Signal(bits)        # row 0 of the image being read

        waddr = Signal(range(slots * row_beats))
        wpos = Signal(range(row_beats))
        flags = RowFlags(g, bits) if self._registered_ready else None
        m.d.comb += [
            i.ready.eq(flags.room if flags else (written - released)[:bits].as_signed() < slots),
            wr.addr.eq(waddr),
            wr.data.eq(i.payload),
            wr.en.eq(i.valid & i.ready),
        ]
        row_written = Signal()
        m.d.comb += row_written.eq(wr.en & (wpos == row_beats - 1))
        with m.If(wr.en):
            m.d.sync += [waddr.eq(Mux(waddr == slots * row_beats - 1, 0, waddr + 1)),
                         wpos.eq(Mux(wpos == row_beats - 1, 0, wpos + 1))]
            with m.If(row_written):
                m.d.sync += written.eq(written + 1)

        oy = Signal(range(g.out_height))
        ox = Signal(range(g.out_width))
        ky = Signal(range(kh))
        kx = Signal(range(kw))  # the beat's first kernel column (a multiple of taps)
        cf = Signal(range(per_pixel))
        # The reader's row and column origins, the rows its output row needs and the rows
        # written ahead of the image being read are registers that follow the counters
        # (top = oy * sh - pad_top, left = ox * sw - pad_left, ahead = written - base), so no
        # multiply or subtraction lies on the path to ``advance``.
        top = Signal(signed(bits), init=-pad_top)
        left = Signal(signed(ceil_log2(width + g.pad_left + g.pad_right + 1) + 1),
                      init=-pad_left)
        iy = Signal(signed(bits))
        ix = Signal(signed(ceil_log2(width + g.pad_left + g.pad_right + 1) + 1))
        m.d.comb += [iy.eq(top + ky), ix.eq(left + kx)]

        def rows_needed(row_top: Value) -> Value:
            # At least the first row, even when the first output rows are all padding: the
            # block must not emit an image that has not started to arrive.
            return Mux(row_top + kh <= 1, 1, Mux(row_top + kh >= height, height, row_top + kh))

        need = Signal(range(height + 1), init=min(max(kh - pad_top, 1), height))
        ahead = Signal(bits)
        available = flags.available if flags else ahead.as_signed() >= need
        slot = (base + iy)[:ceil_log2(slots)]

        # ``read`` holds the words the read ports give (the reads' valid bit), ``taken``
        # says they leave it this cycle: without ``registered_read`` they are the output
        pad_q = Signal(taps)  # each port's tap is in the padding
        words = [rd.data for rd in rds]
        pads = pad_q
        read, taken = o.valid, o.ready
        if self._registered_read:
            read, taken = Signal(), ~o.valid | o.ready
            word = data.ArrayLayout(self._elem_shape, self._simd)
            held = [Signal(word, name=f"read_word{j}", reset_less=True) for j in range(taps)]
            pads = Signal(taps)
            with m.If(taken):
                m.d.sync += [o.valid.eq(read), pads.eq(pad_q)]
                m.d.sync += [h.eq(rd.data) for h, rd in zip(held, rds, strict=True)]
            words = held
        advance = available & (~read | taken)
        pad = []
        for j, rd in enumerate(rds):  # port j reads kernel column kx + j
            ixj = ix + j if j else ix
            pad.append((iy < 0) | (iy >= height) | (ixj < 0) | (ixj >= width))
            m.d.comb += [rd.addr.eq(slot * row_beats + ixj * per_pixel + cf), rd.en.eq(advance)]
            for k in range(self._simd):
                m.d.comb += o.p[j * self._simd + k].eq(
                    Mux(pads[j] if taps > 1 else pads, self._pad_value, words[j][k]))

        with m.If(read & taken):
            m.d.sync += read.eq(0)
        order = [(cf, per_pixel, 1), (kx, kw // taps, taps), (ky, kh, 1)]
        if self._depthwise:
            order = [(kx, kw // taps, taps), (ky, kh, 1), (cf, per_pixel, 1)]
        image_done, row_done = Signal(), Signal()
        m.d.sync += ahead.eq(ahead + row_written - Mux(image_done, height, 0))
        # with registered_ready the counters' carries are flip-flops too (StepFlags)
        steps = StepFlags([*order, (ox, g.out_width, 1)], oy, g.out_height) if flags else None
        if steps:
            carries = steps.step(m, advance)
            m.d.comb += image_done.eq(advance & steps.image_end)
        with m.If(advance):
            m.d.sync += [read.eq(1), pad_q.eq(Cat(*pad) if taps > 1 else pad[0])]
            if not steps:
                carries = self._step(m, [*order, (ox, g.out_width, 1)])
                m.d.comb += image_done.eq(carries[-1] & (oy == g.out_height - 1))
            with m.If(carries[-2]):  # the pixel's last tap: the next column
                m.d.sync += left.eq(Mux(ox == g.out_width - 1, -pad_left, left + sw))
            with m.If(carries[-1]):  # the row's last
                m.d.comb += row_done.eq(1)
                with m.If(image_done):
                    m.d.sync += [oy.eq(0), base.eq(base + height), released.eq(base + height),
                                 top.eq(-pad_top), need.eq(rows_needed(Const(-pad_top)))]
                with m.Else():
                    next_top = top + sh
                    m.d.sync += [oy.eq(oy + 1), top.eq(next_top),
                                 need.eq(rows_needed(next_top))]
                    with m.If(next_top <= 0):
                        m.d.sync += released.eq(base)
                    with m.Elif(next_top >= height):
                        m.d.sync += released.eq(base + height)
                    with m.Else():
                        m.d.sync += released.eq(base + next_top)
        if flags:
            flags.update(m, ahead=ahead, oy=oy, row_written=row_written, row_done=row_done)
        return m

    @staticmethod
    def _step(m: Module, counters: list) -> list[Value]:
        """Advance nested counters ``(counter, count, step)``, innermost first (a counter
        takes ``count`` values, ``step`` apart); returns, for each, "it and all inside it
        were at their last value"."""
        carry, carries = Const(1), []
        for counter, count, step in counters:
            last = counter == (count - 1) * step
            with m.If(carry):
                m.d.sync += counter.eq(Mux(last, 0, counter + step))
            nxt = Signal()
            m.d.comb += nxt.eq(carry & last)
            carry = nxt
            carries.append(carry)
        return carries
