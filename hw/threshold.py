"""Multi-threshold activation: the count of thresholds an accumulator reaches, per channel.

``out = out_bias + out_scale * #{t in thresholds[c] : acc >= t}``, the QONNX MultiThreshold
with an integer output scale. A sorted list of ``T = 2**bits - 1`` thresholds per channel
quantizes an accumulator straight to a ``bits``-bit activation, fusing bias, batch norm, scale
and any monotone activation. ``out_bias = -2**(bits-1)`` gives signed codes. A bipolar activation is
one threshold with ``out_scale = 2, out_bias = -1`` (codes -1/+1 in ``signed(2)``), or with
the defaults, whose 0/1 output a ``BipolarDecoder`` in the next matrix-vector unit reads as
-1/+1 from a single bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from amaranth.hdl import Const, Module, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from qfab.hw._checks import check_shape
from qfab.hw._rom import rom_words
from qfab.hw._skid import OutputRegister, OutputSkid
from qfab.hw.multipliers import shape_for_range, shape_range

__all__ = ["Thresholder", "threshold_model", "threshold_stages"]


def threshold_model(acc: np.ndarray, thresholds: np.ndarray, out_bias: int = 0,
                    out_scale: int = 1) -> np.ndarray:
    """``out_bias + out_scale * (number of thresholds <= acc)``, per channel (last axis)."""
    acc = np.asarray(acc, dtype=np.int64)
    thr = np.asarray(thresholds, dtype=np.int64)
    count = (acc[..., None] >= thr).sum(axis=-1).astype(np.int64)
    return count * int(out_scale) + int(out_bias)


def threshold_stages(*, channels: int, pe: int, **_: Any) -> int:
    """Registers a beat passes before the output register (the unit's ``stages``), from the
    unit's keyword arguments: the accumulator's (beside the threshold ROM's read), none when
    every channel has its own lane and so constant thresholds."""
    return 0 if channels == pe else 1


def _balanced_sum(terms: list) -> Any:
    # a tree, not Python's left-to-right sum: log2(T) adder levels instead of T
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)] + \
            ([terms[-1]] if len(terms) % 2 else [])
    return terms[0]


class Thresholder(wiring.Component):
    """Per-channel multi-threshold activation over a folded channel stream.

    Parameters
    ----------
    acc_shape : ShapeLike
        Shape of one input accumulator.
    channels : int
        Channels per pixel; the input carries ``channels / pe`` beats per pixel.
    pe : int
        Channels per beat; divides ``channels``.
    thresholds : array of int, shape [channels, T] or [1, T]
        Non-decreasing thresholds per channel (one row shared by all channels if [1, T]).
    out_shape : ShapeLike
        Shape of one output code; must hold ``out_bias .. out_bias + T``.
    out_bias : int
        Added to the scaled count (a negative one gives signed activations).
    out_scale : int
        Non-zero multiplier of the count (2 for bipolar {-1, +1} with ``out_bias = -1``).

    One beat a cycle; ``i_stream.ready`` comes from registers only (see ``OutputSkid``),
    but in a unit without stages (:attr:`stages`), whose ``ready`` follows the consumer's
    (``OutputRegister``).

    Members
    -------
    i_stream : In(stream.Signature(ArrayLayout(acc_shape, pe)))
    o_stream : Out(stream.Signature(ArrayLayout(out_shape, pe)))
    """

    def __init__(self, *, acc_shape: Any, channels: int, pe: int, thresholds: Any,
                 out_shape: Any, out_bias: int = 0, out_scale: int = 1):
        for name, value in (("channels", channels), ("pe", pe)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        if channels % pe:
            raise ValueError(f"pe {pe} does not divide channels {channels}")
        thr = np.asarray(thresholds)
        if thr.dtype.kind not in "iu":
            raise ValueError(f"thresholds must be integers, not dtype {thr.dtype}")
        if thr.ndim != 2 or thr.shape[0] not in (1, channels) or thr.shape[1] < 1:
            raise ValueError(f"thresholds must be [{channels}, T] or [1, T], not {thr.shape}")
        unsorted = np.nonzero((np.diff(thr, axis=1) < 0).any(axis=1))[0]
        if unsorted.size:
            raise ValueError(f"thresholds of channel {int(unsorted[0])} are not sorted: "
                             f"{thr[unsorted[0]].tolist()}")
        if isinstance(out_bias, bool) or not isinstance(out_bias, int | np.integer):
            raise ValueError(f"out_bias must be an int, not {out_bias!r}")
        if isinstance(out_scale, bool) or not isinstance(out_scale, int | np.integer) \
                or out_scale == 0:
            raise ValueError(f"out_scale must be a non-zero int, not {out_scale!r}")
        self._acc_shape = check_shape("acc_shape", acc_shape)
        self._out_shape = check_shape("out_shape", out_shape)
        n_thr = thr.shape[1]
        o_lo, o_hi = shape_range(self._out_shape)
        ends = sorted([int(out_bias), int(out_bias) + int(out_scale) * n_thr])
        if not (o_lo <= ends[0] and ends[1] <= o_hi):
            raise ValueError(f"outputs {ends[0]}..{ends[1]} do not fit {self._out_shape!r}")
        self._thresholds = np.broadcast_to(thr.astype(np.int64), (channels, n_thr)).copy()
        self._thresholds.setflags(write=False)
        self._channels, self._pe = channels, pe
        self._out_bias, self._out_scale = int(out_bias), int(out_scale)
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(self._acc_shape, pe))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(self._out_shape, pe))),
        })

    acc_shape = property(lambda self: self._acc_shape)
    out_shape = property(lambda self: self._out_shape)
    channels = property(lambda self: self._channels)
    pe = property(lambda self: self._pe)
    thresholds = property(lambda self: self._thresholds)
    out_bias = property(lambda self: self._out_bias)
    out_scale = property(lambda self: self._out_scale)

    @property
    def num_thresholds(self) -> int:
        return self._thresholds.shape[1]

    @property
    def stages(self) -> int:
        """Registers a beat passes before the output register (:func:`threshold_stages`)."""
        return threshold_stages(channels=self._channels, pe=self._pe)

    @property
    def latency(self) -> int:
        """Cycles from an input beat to its output beat without stalls."""
        return self.stages + 1

    @property
    def cycles_per_pixel(self) -> int:
        """Beats per pixel; one beat a cycle at steady state."""
        return self._channels // self._pe

    def cycles(self, beats: int) -> int:
        """Cycles from the first input beat to the last output beat, both included, for a
        continuous run of ``beats`` beats without back-pressure."""
        return beats + self.latency

    def model(self, acc: np.ndarray) -> np.ndarray:
        """Exact outputs for accumulators ``[..., channels]``."""
        return threshold_model(acc, self._thresholds, self._out_bias, self._out_scale)

    @property
    def _uses_rom(self) -> bool:
        # constants when one fold covers all channels or every channel shares its thresholds
        thr = self._thresholds
        return self._channels != self._pe and not (thr == thr[0]).all()

    @property
    def _threshold_shape(self) -> Shape:
        return shape_for_range(int(self._thresholds.min()), int(self._thresholds.max()))

    @property
    def comparators(self) -> int:
        """Threshold comparisons per cycle: PE x T."""
        return self._pe * self.num_thresholds

    @property
    def threshold_memory(self) -> tuple[int, int]:
        """(depth, width in bits) of the threshold ROM; (0, 0) when thresholds are constants."""
        if not self._uses_rom:
            return 0, 0
        return self.cycles_per_pixel, self.comparators * self._threshold_shape.width

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        pe, folds, n_thr = self._pe, self._channels // self._pe, self.num_thresholds
        i_s, o_s = self.i_stream, self.o_stream
        thr = self._thresholds

        o_layout = data.ArrayLayout(self._out_shape, pe)
        skid = OutputSkid(m, o_s, o_layout) if self.stages else OutputRegister(m, o_s)
        advance = skid.advance
        m.d.comb += i_s.ready.eq(advance)

        # stage 1: the accumulators, and this channel fold's thresholds (ROM if they vary),
        # or the input beat itself when there are no stages
        if self.stages:
            valid1, acc1 = Signal(), Signal(data.ArrayLayout(self._acc_shape, pe))
            with m.If(advance):
                m.d.sync += [valid1.eq(i_s.valid), acc1.eq(i_s.payload)]
        else:
            valid1, acc1 = i_s.valid, i_s.payload
        if not self._uses_rom:
            lanes = [[Const(int(t)) for t in thr[p if folds == 1 else 0]] for p in range(pe)]
        else:
            layout = data.ArrayLayout(data.ArrayLayout(self._threshold_shape, n_thr), pe)
            m.submodules.thresholds = rom = Memory(
                shape=layout.size, depth=folds,
                init=rom_words(layout, thr.reshape(folds, pe, n_thr)))
            rd = rom.read_port(domain="sync")
            rd_data = layout(rd.data)
            fold = Signal(range(folds))
            with m.If(i_s.valid & i_s.ready):
                m.d.sync += fold.eq(fold + 1)
                with m.If(fold == folds - 1):
                    m.d.sync += fold.eq(0)
            m.d.comb += [rd.addr.eq(fold), rd.en.eq(advance)]
            lanes = [[rd_data[p][i] for i in range(n_thr)] for p in range(pe)]

        # stage 2: compare against every threshold and count, into the output register
        result = Signal(o_layout)
        for p in range(pe):
            count = _balanced_sum([acc1[p] >= t for t in lanes[p]])
            m.d.comb += result[p].eq(count * self._out_scale + self._out_bias)
        skid.push(valid1, result)
        return m
