# amaranth: UnusedElaboratable=no
"""Nearest-neighbour upsampling by integer factors (ONNX Resize/Upsample ``nearest``, Keras's
UpSampling2D/1D): each pixel repeated ``scale[1]`` times along the row, each row
``scale[0]`` times.

One input row waits in a row buffer (``width * channels`` elements, never the image); the
block takes the row, then gives its ``scale[0] * scale[1]`` times as many beats from the
buffer, then takes the next row.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Shape, ShapeLike, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from qfab.hw._checks import check_count, check_pair, check_shape

__all__ = ["NearestUpsample", "upsample_reference"]


def upsample_reference(x_nhwc: np.ndarray, scale: tuple[int, int]) -> np.ndarray:
    """[N, H, W, C] -> [N, H * scale[0], W * scale[1], C], each pixel repeated."""
    return np.repeat(np.repeat(x_nhwc, scale[0], axis=1), scale[1], axis=2)


class NearestUpsample(wiring.Component):
    """Repeats each pixel ``scale[1]`` times and each row ``scale[0]`` times.

    Parameters
    ----------
    channels, height, width : int
        Input shape per image, channels last.
    scale : (int, int)
        Row and column factors, each >= 1.
    elem_shape : ShapeLike
        Element shape, in and out.
    n : int
        Elements a beat, in and out; divides ``channels``.

    Members
    -------
    i_stream : In(stream.Signature(data.ArrayLayout(elem_shape, n)))
    o_stream : Out(stream.Signature(data.ArrayLayout(elem_shape, n)))
        ``scale[0] * scale[1]`` times the input's beats, in channels-last order.
    """

    def __init__(self, *, channels: int, height: int, width: int, scale, elem_shape: ShapeLike,
                 n: int):
        self._elem_shape = check_shape("elem_shape", elem_shape)
        self._n = check_count("n", n)
        if check_count("channels", channels) % n:
            raise ValueError(f"n {n!r} does not divide channels {channels!r}")
        self._channels = channels
        self._height = check_count("height", height)
        self._width = check_count("width", width)
        self._scale = check_pair("scale", scale, 2, 1)
        layout = data.ArrayLayout(self._elem_shape, n)
        super().__init__({"i_stream": In(stream.Signature(layout)),
                          "o_stream": Out(stream.Signature(layout))})

    channels = property(lambda self: self._channels)
    height = property(lambda self: self._height)
    width = property(lambda self: self._width)
    scale = property(lambda self: self._scale)
    elem_shape = property(lambda self: self._elem_shape)
    n = property(lambda self: self._n)

    @property
    def row_beats(self) -> int:
        """Beats of one input row: the row buffer's depth."""
        return self._width * self._channels // self._n

    @property
    def row_memory(self) -> tuple[int, int]:
        """(depth, width in bits) of the row buffer."""
        return self.row_beats, self._n * Shape.cast(self._elem_shape).width

    @property
    def cycles_per_image(self) -> int:
        """Cycles an image keeps the block busy with no stalls: each row taken, then given
        ``scale[0] * scale[1]`` times, a beat a cycle."""
        sh, sw = self._scale
        return self._height * self.row_beats * (1 + sh * sw)

    def model(self, x_nhwc: np.ndarray) -> np.ndarray:
        return upsample_reference(x_nhwc, self._scale)

    def elaborate(self, platform) -> Module:
        m = Module()
        sh, sw = self._scale
        bp = self._channels // self._n
        layout = data.ArrayLayout(self._elem_shape, self._n)
        m.submodules.row = row = Memory(shape=layout, depth=self.row_beats, init=[])
        wr, rd = row.write_port(), row.read_port(domain="comb")

        emitting = Signal()
        written = Signal(range(self.row_beats))
        base = Signal(range(max(self.row_beats, 2)))  # the pixel's first beat in the row
        beat, col_rep, x, row_rep = (Signal(range(max(k, 2))) for k in (bp, sw, self._width,
                                                                           sh))
        o_valid = Signal()
        o_payload = Signal(layout)
        m.d.comb += [self.o_stream.valid.eq(o_valid), self.o_stream.payload.eq(o_payload),
                     self.i_stream.ready.eq(~emitting),
                     wr.addr.eq(written), wr.data.eq(self.i_stream.payload),
                     wr.en.eq(self.i_stream.valid & ~emitting),
                     rd.addr.eq(base + beat)]
        with m.If(self.i_stream.valid & ~emitting):
            m.d.sync += written.eq(written + 1)
            with m.If(written == self.row_beats - 1):
                m.d.sync += [written.eq(0), emitting.eq(1)]

        load = emitting & (~o_valid | self.o_stream.ready)
        with m.If(load):
            m.d.sync += [o_payload.eq(rd.data), o_valid.eq(1)]
            self._advance(m, [(beat, bp), (col_rep, sw), (x, self._width), (row_rep, sh)],
                          base, bp, emitting)
        with m.Elif(self.o_stream.ready):
            m.d.sync += o_valid.eq(0)
        return m

    def _advance(self, m: Module, counters, base: Signal, bp: int, emitting: Signal) -> None:
        """Step the counters (fastest first); move ``base`` to the next pixel after its
        last repeat, back to the row's start after the row; stop after the last repeat."""
        (beat, nb), (col_rep, nc), (x, nx), (row_rep, nr) = counters
        end_pixel = (beat == nb - 1) & (col_rep == nc - 1)
        with m.If(beat == nb - 1):
            m.d.sync += beat.eq(0)
            with m.If(col_rep == nc - 1):
                m.d.sync += col_rep.eq(0)
            with m.Else():
                m.d.sync += col_rep.eq(col_rep + 1)
        with m.Else():
            m.d.sync += beat.eq(beat + 1)
        with m.If(end_pixel):
            with m.If(x == nx - 1):
                m.d.sync += [x.eq(0), base.eq(0)]
                with m.If(row_rep == nr - 1):
                    m.d.sync += [row_rep.eq(0), emitting.eq(0)]
                with m.Else():
                    m.d.sync += row_rep.eq(row_rep + 1)
            with m.Else():
                m.d.sync += [x.eq(x + 1), base.eq(base + bp)]


