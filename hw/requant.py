"""Requantizer: accumulators to output codes with a dyadic scale, per channel.

``out = clamp(round((acc + bias) * mult / 2**shift) + zero_point, lo, hi)``, the integer-only
requantization of HAWQ-V3 (``Dyadic.apply`` then zero point and clamp). The clamp fuses ReLU
(``lo = zero_point``) and Clip.

Per-channel shifts are aligned to the largest one: the product is shifted left by
``shift_max - shift`` so the rounding always looks at the same bits, and the rounding logic is
a constant bit select, a sticky OR and an increment.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np
from amaranth.hdl import Const, Module, Mux, Shape, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from qfab.hw._checks import check_count, check_shape
from qfab.hw._pipelined_sum import pipelined_sums, register_bits, sum_stages
from qfab.hw._skid import OutputRegister, OutputSkid
from qfab.hw.adder_graph import csd_digits
from qfab.hw.multipliers import shape_for_range, shape_range
from qfab.numerics import ROUNDINGS, Dyadic, check_rounding

__all__ = ["Requantizer", "requant_model", "requant_stages", "ROUNDINGS"]

def requant_model(acc: np.ndarray, *, bias: Any = 0, mult: Any = 1, shift: Any = 0,
                  zero_point: int = 0, lo: int, hi: int,
                  rounding: str = "half_even") -> np.ndarray:
    """What the requantizer computes on a tensor ``[..., C]`` of accumulators (int64 out):
    ``clip(Dyadic(mult, shift).apply(acc + bias, rounding) + zero_point, lo, hi)``."""
    v = np.asarray(acc, dtype=np.int64) + np.asarray(bias, dtype=np.int64)
    q = Dyadic(mult, shift).apply(v, rounding) + int(zero_point)
    return np.clip(q, lo, hi).astype(np.int64)


def requant_stages(*, channels: int, pe: int, mult: Any = 1, shift: Any = 0, bias: Any = 0,
                   shift_add: bool = False, adders_per_stage: int | None = None,
                   **_: Any) -> int:
    """Registers a beat passes before the output register (the unit's ``stages``), from the
    unit's keyword arguments: none when every lane's scale is a constant power of two (a
    bias add, a shift, a rounding increment and a clamp fit one cycle), else the
    accumulator's (beside the parameter ROM's read) and the product's; with
    ``adders_per_stage``, the product's become one after every that many adder levels of
    the shift-add lanes' trees, or the biased accumulator's and the product's, and the
    rounding bit's comes after them."""
    mults, shifts = np.broadcast_arrays(np.asarray(mult, dtype=object).reshape(-1),
                                        np.asarray(shift, dtype=object).reshape(-1))
    scaled = [int(k) << max(-int(s), 0) for k, s in zip(mults, shifts, strict=True)]
    if channels == pe:
        if all(k & (k - 1) == 0 for k in scaled):
            return 0
        if adders_per_stage is not None and shift_add:
            biases = np.broadcast_to(np.asarray(bias, dtype=object).reshape(-1), (channels,))
            counts = [len(csd_digits(k)) + bool(int(b) * k) for k, b in zip(
                np.broadcast_to(np.asarray(scaled, dtype=object), (channels,)), biases,
                strict=True)]
            return 2 + sum_stages(counts, adders_per_stage)
    elif adders_per_stage is not None and shift_add and one_scale(mult, shift):
        # the accumulator's, the biased accumulator's, the tree's, the rounding bit's
        return 3 + sum_stages([len(csd_digits(scaled[0]))], adders_per_stage)
    return 2 if adders_per_stage is None else 4


def one_scale(mult: Any, shift: Any) -> bool:
    """Whether every channel has the same scale ``mult / 2**shift`` (as given: the same
    ``mult`` and the same ``shift``), so a folded unit's lanes multiply by a constant."""
    return len({int(v) for v in np.asarray(mult).reshape(-1)}) == 1 \
        and len({int(v) for v in np.asarray(shift).reshape(-1)}) == 1


def _per_channel(name: str, value: Any, channels: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu" or arr.ndim > 1:
        raise ValueError(f"{name} must be an int or a 1-D int array, not {value!r}")
    if arr.ndim == 1 and arr.size != channels:
        raise ValueError(f"{name} has {arr.size} values for {channels} channels")
    return np.broadcast_to(arr.astype(np.int64), (channels,)).copy()


def balanced_sum(terms: list, add: Callable[[Any, Any], Any]) -> Any:
    """``terms`` (at least one) summed pairwise level by level, an odd one out waiting a
    level: the tree ``shift_add_product`` builds, which the cost model walks too."""
    while len(terms) > 1:
        terms = [add(a, b) for a, b in zip(terms[::2], terms[1::2], strict=False)] \
            + terms[len(terms) - len(terms) % 2:]
    return terms[0]


def shift_add_product(x: Any, k: int) -> Any:
    """``x * k`` for a constant ``k`` as shifted copies of ``x`` in canonical signed digits,
    summed by a balanced tree: adders Yosys keeps in LUTs (a ``*`` would go to a DSP)."""
    terms = [x << s if sign > 0 else -(x << s) for s, sign in csd_digits(int(k))]
    return balanced_sum(terms, operator.add) if terms else Const(0, 1)


class Requantizer(wiring.Component):
    """Per-channel dyadic requantization with bias, rounding, zero point and clamp.

    Parameters
    ----------
    acc_shape : ShapeLike
        Shape of one input accumulator.
    channels : int
        Channels per pixel; the input carries ``channels / pe`` beats per pixel.
    pe : int
        Channels per beat; divides ``channels``.
    bias : int or array of int
        Added to the accumulator first, per channel.
    mult, shift : int or array of int
        The dyadic scale ``mult / 2**shift``, scalar or per channel. A negative shift is
        folded into ``mult``.
    zero_point : int
        Added after rounding.
    lo, hi : int, optional
        Clamp bounds in output codes; default the range of ``out_shape``.
    out_shape : ShapeLike
        Shape of one output code; must hold ``[lo, hi]``.
    rounding : str
        ``"half_even"`` (ONNX), ``"half_up"``, ``"half_away"`` or ``"floor"``.
    shift_add : bool
        When each lane's scale is a constant (every channel has its own lane, ``pe ==
        channels``, or every channel has the same ``mult`` and ``shift``), multiply by
        shifts and adds in LUTs instead of a DSP.
    adders_per_stage : int, optional
        Pipelined for a fast clock: shift-add lanes sum their shifted copies (and, a lane a
        channel, the constant ``bias * mult``) in a tree registered every that many adder
        levels; lanes of a folded unit register the biased accumulator before the
        multiplier or the tree. None: the bias add and the product in one cycle.

    One beat a cycle; ``i_stream.ready`` comes from registers only (see ``OutputSkid``),
    but in a unit without stages (:attr:`stages`), whose ``ready`` follows the consumer's
    (``OutputRegister``).

    Members
    -------
    i_stream : In(stream.Signature(ArrayLayout(acc_shape, pe)))
    o_stream : Out(stream.Signature(ArrayLayout(out_shape, pe)))
    """

    def __init__(self, *, acc_shape: Any, channels: int, pe: int, bias: Any = 0,
                 mult: Any = 1, shift: Any = 0, zero_point: int = 0, lo: int | None = None,
                 hi: int | None = None, out_shape: Any, rounding: str = "half_even",
                 shift_add: bool = False, adders_per_stage: int | None = None):
        for name, value in (("channels", channels), ("pe", pe)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        if channels % pe:
            raise ValueError(f"pe {pe} does not divide channels {channels}")
        check_rounding(rounding)
        if isinstance(zero_point, bool) or not isinstance(zero_point, int | np.integer):
            raise ValueError(f"zero_point must be an int, not {zero_point!r}")
        self._acc_shape = check_shape("acc_shape", acc_shape)
        self._out_shape = check_shape("out_shape", out_shape)
        out_lo, out_hi = shape_range(self._out_shape)
        lo = out_lo if lo is None else int(lo)
        hi = out_hi if hi is None else int(hi)
        if not out_lo <= lo <= hi <= out_hi:
            raise ValueError(f"clamp [{lo}, {hi}] is empty or outside {self._out_shape!r}")
        self._channels, self._pe = channels, pe
        self._bias = _per_channel("bias", bias, channels)
        self._mult = _per_channel("mult", mult, channels)
        self._shift = _per_channel("shift", shift, channels)
        if (self._mult < 0).any():
            raise ValueError(f"mult must be >= 0 (a dyadic scale), not {mult!r}")
        # the hardware shifts right by >= 0 only: a left shift moves into the multiplier
        self._hw_mult = self._mult.astype(object) << np.maximum(-self._shift, 0).astype(object)
        self._hw_shift = np.maximum(self._shift, 0)
        self._zero_point, self._lo, self._hi = int(zero_point), lo, hi
        self._rounding = rounding
        self._shift_add = bool(shift_add) and (channels == pe
                                               or one_scale(self._mult, self._shift))
        self._per_stage = None if adders_per_stage is None \
            else check_count("adders_per_stage", adders_per_stage)
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(self._acc_shape, pe))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(self._out_shape, pe))),
        })

    acc_shape = property(lambda self: self._acc_shape)
    out_shape = property(lambda self: self._out_shape)
    channels = property(lambda self: self._channels)
    pe = property(lambda self: self._pe)
    bias = property(lambda self: self._bias.copy())
    mult = property(lambda self: self._mult.copy())
    shift = property(lambda self: self._shift.copy())
    zero_point = property(lambda self: self._zero_point)
    lo = property(lambda self: self._lo)
    hi = property(lambda self: self._hi)
    rounding = property(lambda self: self._rounding)
    shift_add = property(lambda self: self._shift_add)
    adders_per_stage = property(lambda self: self._per_stage)

    @property
    def stages(self) -> int:
        """Registers a beat passes before the output register (:func:`requant_stages`)."""
        return requant_stages(channels=self._channels, pe=self._pe, mult=self._mult,
                              shift=self._shift, bias=self._bias, shift_add=self._shift_add,
                              adders_per_stage=self._per_stage)

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
        return requant_model(acc, bias=self._bias, mult=self._mult, shift=self._shift,
                             zero_point=self._zero_point, lo=self._lo, hi=self._hi,
                             rounding=self._rounding)

    def _product_range(self) -> tuple[int, int]:
        a_lo, a_hi = shape_range(self._acc_shape)
        s_max = int(self._hw_shift.max())
        ends = []
        for b, k, s in zip(self._bias, self._hw_mult, self._hw_shift, strict=True):
            scale = int(k) << (s_max - int(s))
            ends += [(a_lo + int(b)) * scale, (a_hi + int(b)) * scale]
        return min(ends + [0]), max(ends + [0])

    def _params(self) -> tuple[dict[str, np.ndarray], dict[str, Shape]]:
        """Per-channel parameters, and the ROM field shapes of those that change between
        channel folds (none when one fold covers every channel: lanes get constants)."""
        s_max = int(self._hw_shift.max())
        params = {"bias": self._bias, "mult": self._hw_mult, "lshift": s_max - self._hw_shift}
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

    def _clamped_wide(self, q: Any, up: Any) -> Any:
        # the registered lanes' clamp, on every bit of q: the calibration grid measured
        # this one (the narrow one below is for the lanes without registers so far)
        r = q + up + self._zero_point
        return Mux(r < self._lo, self._lo, Mux(r > self._hi, self._hi, r))

    def _clamped(self, q: Any, up: Any) -> Any:
        """``clamp(q + up + zero_point, lo, hi)`` with the increment as wide as the output:
        ``q`` below ``lo - zero_point`` or from ``hi - zero_point`` up gives a bound (``up``
        is at most 1), and between them the sum is an output code, so the low bits of ``q``
        give it. A bound the range of ``q`` never passes costs nothing."""
        low, high = self._lo - self._zero_point, self._hi - self._zero_point
        width = self._out_shape.width
        inside = q + up + self._zero_point if len(q) <= width \
            else (q[:width] + up + self._zero_point)[:width]
        q_lo, q_hi = self._rounded_range()
        if q_hi + 1 > high:
            inside = Mux(q >= high, self._hi, inside)
        if q_lo < low:
            inside = Mux(q < low, self._lo, inside)
        return inside

    def _rounded_range(self) -> tuple[int, int]:
        """The range of the product shifted right (before the rounding increment)."""
        s_max = int(self._hw_shift.max())
        lo, hi = self._product_range()
        return lo >> s_max, hi >> s_max

    def _tree_terms(self) -> list[list[tuple[int, int, int]]]:
        """Each shift-add lane's terms of ``(acc + bias) * mult << lshift``: ``(shift, sign,
        0)`` for a shifted copy of the accumulator (folded: of the biased accumulator),
        ``(0, 0, constant)`` for ``bias * mult`` shifted (a lane a channel only)."""
        params, _ = self._params()
        lanes = []
        for k, b, ls in zip(params["mult"].tolist(), params["bias"].tolist(),
                            params["lshift"].tolist(), strict=True):
            terms = [(s + int(ls), sign, 0) for s, sign in csd_digits(int(k))]
            if int(b) * int(k) and self._channels == self._pe:
                terms.append((0, 0, (int(b) * int(k)) << int(ls)))
            lanes.append(terms)
        return lanes[:self._pe]

    def _biased_shape(self) -> Shape:
        return Shape(self._acc_shape.width + 1, True)

    def _tree_ranges(self) -> list[list[tuple[int, int]]]:
        a_lo, a_hi = shape_range(self._acc_shape if self._channels == self._pe
                                 else self._biased_shape())
        return [[(c, c) if not sign else
                 tuple(sorted((sign * (a_lo << s), sign * (a_hi << s))))
                 for s, sign, c in terms] for terms in self._tree_terms()]

    @property
    def pipeline_bits(self) -> int:
        """Bits of the registers besides the accumulator's, the product's and the output's
        (none unless ``adders_per_stage``)."""
        if self._per_stage is None or not self.stages:
            return 0
        lo, hi = self._product_range()
        rounded = self._pe * (max(shape_for_range(lo, hi).width - int(self._hw_shift.max()), 1)
                              + 1)
        biased = 0 if self._channels == self._pe else self._pe * self._biased_shape().width
        if not self._shift_add:
            return rounded + biased
        return rounded + biased + register_bits(self._tree_ranges(), self._per_stage)

    def _product_tree(self, m: Module, advance: Any, valid: Any,
                      acc1: Any) -> tuple[Any, list]:
        """The shift-add lanes' products of ``acc1`` (each lane's accumulator, or biased
        accumulator) summed in a tree registered every ``adders_per_stage`` levels: (the
        valid bit beside the sums, the sums)."""
        lanes = [[(Const(c) if not sign else (acc1[p] << s) if sign > 0 else -(acc1[p] << s),
                   r) for (s, sign, c), r in zip(terms, ranges, strict=True)]
                 for p, (terms, ranges) in enumerate(zip(self._tree_terms(),
                                                         self._tree_ranges(), strict=True))]
        flags = [valid]

        def register(signals: list, values: list) -> list:
            moved = Signal(name=f"valid_tree{len(flags)}")
            with m.If(advance):
                m.d.sync += [s.eq(v) for s, v in zip(signals, values, strict=True)]
                m.d.sync += moved.eq(flags[-1])
            flags.append(moved)
            return signals

        sums = pipelined_sums(lanes, self._per_stage, register)
        return flags[-1], sums

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        pe, folds = self._pe, self._channels // self._pe
        i_s, o_s = self.i_stream, self.o_stream
        s_max = int(self._hw_shift.max())
        params, fields = self._params()

        o_layout = data.ArrayLayout(self._out_shape, pe)
        skid = OutputSkid(m, o_s, o_layout) if self.stages else OutputRegister(m, o_s)
        advance = skid.advance
        m.d.comb += i_s.ready.eq(advance)
        fire = i_s.valid & i_s.ready

        # stage 1: the accumulators, and this channel fold's parameters from the ROM (or
        # the input beat itself, and the product below, when there are no stages)
        piped = self.stages > 0
        valid1, acc1 = (Signal(), Signal(data.ArrayLayout(self._acc_shape, pe))) if piped \
            else (i_s.valid, i_s.payload)
        if piped:
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

        # stage 2: the scaled product, aligned to the largest shift
        valid2 = Signal() if piped else valid1
        shape = shape_for_range(*self._product_range())
        if shape.width <= s_max:
            # A shift past every product bit (a tiny multiplier): the rounding still reads
            # bit s_max - 1, which a sign-extended product holds.
            shape = signed(s_max + 1)
        prod = [Signal(shape, name=f"prod{p}") for p in range(pe)]
        tree = self._per_stage is not None and self._shift_add and piped
        if tree and folds == 1:
            valid2, sums = self._product_tree(m, advance, valid1, acc1)
            m.d.comb += [prod[p].eq(sums[p]) for p in range(pe)]
        else:
            if self._per_stage is not None and piped:  # the bias add a cycle of its own
                biased = [Signal(self._biased_shape(), name=f"biased{p}")
                          for p in range(pe)]
                valid_b = Signal()
                with m.If(advance):
                    m.d.sync += [b.eq(acc1[p] + lane[p]["bias"]) for p, b in enumerate(biased)]
                    m.d.sync += valid_b.eq(valid1)
                    for p in range(pe):  # the ROM's fields for the product follow it
                        for name in ("mult", "lshift"):
                            if name in fields:
                                held = Signal.like(lane[p][name], name=f"{name}{p}_b")
                                m.d.sync += held.eq(lane[p][name])
                                lane[p][name] = held
                valid1 = valid_b
            else:
                biased = [acc1[p] + lane[p]["bias"] for p in range(pe)]
            if tree:  # one scale for every channel: its shifted copies of the biased sum
                valid2, sums = self._product_tree(m, advance, valid1, biased)
                m.d.comb += [prod[p].eq(sums[p]) for p in range(pe)]
        if not tree:
            products = []
            for p in range(pe):
                scaled = shift_add_product(biased[p], params["mult"][p]) if self._shift_add \
                    else biased[p] * lane[p]["mult"]
                products.append(prod[p].eq(scaled << lane[p]["lshift"]))
            if piped:
                with m.If(advance):
                    m.d.sync += [valid2.eq(valid1), *products]
            else:
                m.d.comb += products

        # stage 3: round, add the zero point, clamp, into the output register (pipelined:
        # the rounding bit and the shifted product registered first, and the narrow clamp,
        # its compares beside the increment rather than after it)
        result = Signal(o_layout)
        pipelined = piped and self._per_stage is not None
        clamp = self._clamped if pipelined or not piped else self._clamped_wide
        rounded = []
        for p in range(pe):
            q = prod[p] >> s_max
            if s_max == 0 or self._rounding == "floor":
                up = Const(0, 1)
            else:
                half = prod[p][s_max - 1]
                sticky = prod[p][:s_max - 1].any() if s_max > 1 else Const(0, 1)
                up = {"half_up": half,
                      "half_even": half & (sticky | q[0]),
                      "half_away": half & (sticky | (prod[p] >= 0))}[self._rounding]
            rounded.append((q, up))
        if pipelined:
            held, valid_r = [], Signal()
            with m.If(advance):
                m.d.sync += valid_r.eq(valid2)
                for p, (q, up) in enumerate(rounded):
                    q_r, up_r = Signal.like(q, name=f"q{p}"), Signal(name=f"up{p}")
                    m.d.sync += [q_r.eq(q), up_r.eq(up)]
                    held.append((q_r, up_r))
            rounded, valid2 = held, valid_r
        for p, (q, up) in enumerate(rounded):
            m.d.comb += result[p].eq(clamp(q, up))
        skid.push(valid2, result)
        return m
