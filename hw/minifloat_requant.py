"""Minifloat requantizer: accumulators to minifloat codes with a dyadic scale, per channel.

``out = fmt.encode_fixed((acc + bias) * mult, -shift)``: the exact value
``(acc + bias) * mult * 2**-shift`` rounded once to the nearest code of ``fmt`` (ties to the
even code), with its subnormals, overflow to the format's saturation, infinity or NaN, and
negative results that round to zero keeping the sign where the format has a negative zero.
An optional ReLU turns every negative value into ``+0`` first. The input is an accumulator, or
with ``in_fmt`` the codes of another minifloat tensor, decoded to their exact fixed-point value.

The product is aligned to one fixed point for every channel, ``P * 2**-S``, with ``S`` chosen
so the format's smallest step ``2**fmt.lsb_exponent`` is at least two units of ``P``: then
every rounding looks at a guard bit of ``|P|``. With ``k`` the position of the leading one of
``|P|`` (at least ``kmin``, the position of the format's smallest normal exponent), the
significand is ``t = |P| >> (k - M)`` and the code magnitude is ``((k - kmin) << M) + t``
(minus ``2**M`` without subnormals, whose binade 0 is normal): that sequence is monotone and
continues past the largest code, so rounding up carries into the exponent and overflow is
``code > code_max``, which is the golden model's "as if the exponent were unbounded".
"""

from __future__ import annotations

from typing import Any

import numpy as np
from amaranth.hdl import Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from qfab.hw._checks import check_shape
from qfab.hw._skid import OutputSkid
from qfab.hw.multipliers import MinifloatDecoder, shape_for_range, shape_range

__all__ = ["MinifloatRequantizer", "minifloat_requant_model"]


def minifloat_requant_model(acc: np.ndarray, *, fmt: Any, bias: Any = 0, mult: Any = 1,
                            shift: Any = 0, relu: bool = False) -> np.ndarray:
    """What the block computes on accumulators ``[..., C]`` (int64 codes out):
    ``fmt.encode_fixed(max?((acc + bias) * mult, 0), -shift)``."""
    v = np.asarray(acc).astype(object) + np.asarray(bias).astype(object)
    v = v * np.asarray(mult).astype(object)
    if relu:
        v = np.where(v < 0, 0, v).astype(object)
    return np.asarray(fmt.encode_fixed(v, -np.asarray(shift, np.int64)), np.int64)


def _per_channel(name: str, value: Any, channels: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu" or arr.ndim > 1:
        raise ValueError(f"{name} must be an int or a 1-D int array, not {value!r}")
    if arr.ndim == 1 and arr.size != channels:
        raise ValueError(f"{name} has {arr.size} values for {channels} channels")
    return np.broadcast_to(arr.astype(np.int64), (channels,)).copy()


class MinifloatRequantizer(wiring.Component):
    """Per-channel dyadic requantization of accumulators to a minifloat format.

    Parameters
    ----------
    acc_shape : ShapeLike
        Shape of one input accumulator.
    channels : int
        Channels per pixel; the input carries ``channels / pe`` beats per pixel.
    pe : int
        Channels per beat; divides ``channels``.
    fmt : qfab.numerics.MinifloatFormat
        The output format; a format without a zero (no subnormals and no mantissa) is refused.
    bias : int or array of int
        Added to the accumulator first, per channel.
    mult, shift : int or array of int
        The dyadic scale ``mult / 2**shift``, scalar or per channel; ``mult >= 0``.
    relu : bool
        Negative values become ``+0``.
    in_fmt : qfab.numerics.MinifloatFormat, optional
        The inputs are codes of this format (``acc_shape`` is then ``unsigned(in_fmt.bits)``)
        and stand for ``in_fmt.to_fixed(code)``.

    Members
    -------
    i_stream : In(stream.Signature(ArrayLayout(acc_shape, pe)))
    o_stream : Out(stream.Signature(ArrayLayout(unsigned(fmt.bits), pe)))
    """

    def __init__(self, *, acc_shape: Any, channels: int, pe: int, fmt: Any, bias: Any = 0,
                 mult: Any = 1, shift: Any = 0, relu: bool = False, in_fmt: Any = None):
        for name, value in (("channels", channels), ("pe", pe)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        if channels % pe:
            raise ValueError(f"pe {pe} does not divide channels {channels}")
        for attr in ("exp_bits", "man_bits", "subnormals", "encode_fixed", "code_max"):
            if not hasattr(fmt, attr):
                raise ValueError(f"fmt must be a MinifloatFormat, not {fmt!r}")
        if not fmt.has_zero:
            raise ValueError(f"format {fmt} has no zero code; it has no requantizer")
        if not isinstance(relu, bool):
            raise ValueError(f"relu must be a bool, not {relu!r}")
        self._acc_shape = check_shape("acc_shape", acc_shape)
        self._in_fmt = in_fmt
        self._decoder = None if in_fmt is None else MinifloatDecoder(in_fmt)
        if self._decoder is not None and self._decoder.code_shape != self._acc_shape:
            raise ValueError(f"acc_shape {self._acc_shape!r} does not hold {in_fmt} codes "
                             f"({self._decoder.code_shape!r})")
        self._channels, self._pe, self._fmt, self._relu = channels, pe, fmt, relu
        self._bias = _per_channel("bias", bias, channels)
        self._mult = _per_channel("mult", mult, channels)
        self._shift = _per_channel("shift", shift, channels)
        if (self._mult < 0).any():
            raise ValueError(f"mult must be >= 0 (a dyadic scale), not {mult!r}")
        # A left shift moves into the multiplier; then every channel aligns to the point S.
        self._hw_mult = self._mult.astype(object) << np.maximum(-self._shift, 0).astype(object)
        hw_shift = np.maximum(self._shift, 0)
        self._point = max(int(hw_shift.max()), 1 - int(fmt.lsb_exponent))
        self._lshift = self._point - hw_shift
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(self._acc_shape, pe))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(unsigned(fmt.bits), pe))),
        })

    acc_shape = property(lambda self: self._acc_shape)
    out_shape = property(lambda self: unsigned(self._fmt.bits))
    fmt = property(lambda self: self._fmt)
    channels = property(lambda self: self._channels)
    pe = property(lambda self: self._pe)
    bias = property(lambda self: self._bias.copy())
    mult = property(lambda self: self._mult.copy())
    shift = property(lambda self: self._shift.copy())
    relu = property(lambda self: self._relu)
    in_fmt = property(lambda self: self._in_fmt)

    @property
    def latency(self) -> int:
        """Cycles from an input beat to its output beat without stalls."""
        return 4

    @property
    def cycles_per_pixel(self) -> int:
        """Beats per pixel; one beat a cycle at steady state."""
        return self._channels // self._pe

    def cycles(self, beats: int) -> int:
        """Cycles from the first input beat to the last output beat, both included, for a
        continuous run of ``beats`` beats without back-pressure."""
        return beats + self.latency

    def model(self, acc: np.ndarray) -> np.ndarray:
        """Exact output codes for accumulators (or ``in_fmt`` codes) ``[..., channels]``."""
        if self._in_fmt is not None:
            acc = self._in_fmt.to_fixed(acc)
        return minifloat_requant_model(acc, fmt=self._fmt, bias=self._bias, mult=self._mult,
                                       shift=self._shift, relu=self._relu)

    def _params(self) -> tuple[dict[str, np.ndarray], dict[str, Shape]]:
        """Per-channel parameters, and the ROM field shapes of those that vary between
        channel folds (none when one fold covers every channel: lanes get constants)."""
        params = {"bias": self._bias, "mult": self._hw_mult, "lshift": self._lshift}
        if self._channels == self._pe:
            return params, {}
        return params, {name: shape_for_range(min(v.tolist()), max(v.tolist()))
                        for name, v in params.items() if len(set(v.tolist())) > 1}

    @property
    def param_memory(self) -> tuple[int, int]:
        """(depth, width in bits) of the parameter ROM; (0, 0) when parameters are constants."""
        _, fields = self._params()
        if not fields:
            return 0, 0
        return self.cycles_per_pixel, self._pe * sum(f.width for f in fields.values())

    def _product_range(self) -> tuple[int, int]:
        a_lo, a_hi = shape_range(self._acc_shape)
        if self._decoder is not None:
            a_lo, a_hi = self._decoder.value_min, self._decoder.value_max
        ends = [0]
        for b, k, s in zip(self._bias, self._hw_mult, self._lshift, strict=True):
            scale = int(k) << int(s)
            ends += [(a_lo + int(b)) * scale, (a_hi + int(b)) * scale]
        if self._relu:
            ends = [max(e, 0) for e in ends]
        return min(ends), max(ends)

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        pe, folds = self._pe, self._channels // self._pe
        i_s = self.i_stream
        params, fields = self._params()

        o_layout = data.ArrayLayout(unsigned(self._fmt.bits), pe)
        skid = OutputSkid(m, self.o_stream, o_layout)
        advance = skid.advance
        m.d.comb += i_s.ready.eq(advance)
        fire = i_s.valid & i_s.ready

        # stage 1: the accumulators, and this channel fold's parameters from the ROM
        valid1 = Signal()
        acc1 = Signal(data.ArrayLayout(self._acc_shape, pe))
        with m.If(advance):
            m.d.sync += [valid1.eq(i_s.valid), acc1.eq(i_s.payload)]
        lane = [{name: Const(int(v[p if folds == 1 else 0])) for name, v in params.items()}
                for p in range(pe)]
        if fields:
            word = data.ArrayLayout(data.StructLayout(fields), pe)
            init = [[{name: int(params[name][f * pe + p]) for name in fields}
                     for p in range(pe)] for f in range(folds)]
            m.submodules.params = rom = Memory(shape=word, depth=folds, init=init)
            rd = rom.read_port(domain="sync")
            fold = Signal(range(folds))
            with m.If(fire):
                m.d.sync += fold.eq(Mux(fold == folds - 1, 0, fold + 1))
            m.d.comb += [rd.addr.eq(fold), rd.en.eq(advance)]
            for p in range(pe):
                for name in fields:
                    lane[p][name] = rd.data[p][name]

        # stage 2: the scaled product P, in units of 2**-S for every channel
        p_lo, p_hi = self._product_range()
        valid2 = Signal()
        prod = [Signal(shape_for_range(min(p_lo, -1), p_hi), name=f"prod{p}") for p in range(pe)]
        values = [acc1[p] if self._decoder is None else self._decoder.decode(m, acc1[p])
                  for p in range(pe)]  # decoded outside the enable, so it is not gated
        with m.If(advance):
            m.d.sync += valid2.eq(valid1)
            for p, value in enumerate(values):
                m.d.sync += prod[p].eq(
                    ((value + lane[p]["bias"]) * lane[p]["mult"]) << lane[p]["lshift"])

        # stage 3: sign, magnitude and the position of its leading one
        width = max(max(-p_lo, p_hi).bit_length(), 1)
        fmt, man = self._fmt, self._fmt.man_bits
        kmin = int(fmt.lsb_exponent) + self._point + man
        kmax = max(width - 1, kmin)
        valid3 = Signal()
        neg = [Signal(name=f"neg{p}") for p in range(pe)]
        mag = [Signal(width, name=f"mag{p}") for p in range(pe)]
        lead = [Signal(range(kmin, kmax + 1), name=f"lead{p}") for p in range(pe)]
        with m.If(advance):
            m.d.sync += valid3.eq(valid2)
            for p in range(pe):
                negative = prod[p] < 0
                absolute, leading = self._leading_one(m, prod[p], negative, kmin, kmax, width, p)
                m.d.sync += [neg[p].eq(0 if self._relu else negative), mag[p].eq(absolute),
                             lead[p].eq(leading)]

        # stage 4: round at the leading one's precision, saturate, into the output register
        result = Signal(o_layout)
        for p in range(pe):
            m.d.comb += result[p].eq(self._encode(m, neg[p], mag[p], lead[p], kmin, width, p))
        skid.push(valid3, result)
        return m

    def _leading_one(self, m: Module, prod: Any, negative: Any, kmin: int, kmax: int,
                     width: int, p: int) -> tuple[Signal, Signal]:
        """|prod| (0 for a negative one under ReLU), and max(kmin, its leading one's place)."""
        absolute = Signal(width, name=f"abs{p}")
        m.d.comb += absolute.eq(Mux(negative, 0 if self._relu else -prod, prod))
        lead = Signal(range(kmin, kmax + 1), name=f"lead_c{p}")
        m.d.comb += lead.eq(kmin)
        for i in range(kmin + 1, kmax + 1):  # the last match (the highest bit) wins
            with m.If(absolute[i]):
                m.d.comb += lead.eq(i)
        return absolute, lead

    def _encode(self, m: Module, neg: Any, mag: Any, lead: Any, kmin: int, width: int,
                p: int) -> Any:
        fmt, man = self._fmt, self._fmt.man_bits
        step = Signal(range(width + 1), name=f"step{p}")  # rounding position k - M >= 1
        m.d.comb += step.eq(lead - man)
        sig = Signal(width, name=f"sig{p}")
        rem = Signal(width, name=f"rem{p}")
        half = Signal(width + 1, name=f"half{p}")
        m.d.comb += [sig.eq(mag >> step), rem.eq(mag - (sig << step)),
                     half.eq((Const(1, width + 1) << step) >> 1)]
        offset = 0 if fmt.subnormals else 1 << man
        code_w = max(width + 2, fmt.bits + 2)
        trunc = Signal(signed(code_w), name=f"trunc{p}")
        m.d.comb += trunc.eq(((lead - kmin) << man) + sig - offset)
        up = (rem > half) | ((rem == half) & trunc[0])
        code = Signal(signed(code_w), name=f"code{p}")
        m.d.comb += code.eq(trunc + up)
        if not fmt.subnormals:
            # Binade 0 is normal here, and its first value is not a code: below the smallest
            # positive value the choice is between +0 and that value (a tie goes to 0).
            unit = int(fmt.lsb_exponent) + self._point
            min_pos = ((1 << man) + 1) << unit
            with m.If(mag < min_pos):
                m.d.comb += code.eq(mag > (((1 << man) + 1) << (unit - 1)))
        sign_bit = fmt.sign_bit
        if fmt.saturate or fmt.special == "none":
            overflow = fmt.code_max
        elif fmt.special == "ieee":
            overflow = fmt.inf_code
        else:
            overflow = fmt.nan_code
        signed_overflow = fmt.special != "fnuz" or fmt.saturate
        out = Signal(fmt.bits, name=f"out{p}")
        m.d.comb += out.eq(code[:fmt.bits - 1] | Mux(neg, sign_bit, 0))
        if not fmt.has_negative_zero:
            with m.If(code == 0):
                m.d.comb += out.eq(0)
        with m.If(code > fmt.code_max):
            m.d.comb += out.eq(overflow | (Mux(neg, sign_bit, 0) if signed_overflow else 0))
        return out
