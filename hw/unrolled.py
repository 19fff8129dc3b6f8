"""Fully unrolled layers as one pipeline: adder graphs, requantizer and threshold lanes.

Where every layer of a run is unrolled (each product sees one weight, each channel has its
own lane), the run is one graph of values (:mod:`qfab.hw._levels`): the adder graphs of the
constant matrix-vector products (:mod:`qfab.hw.adder_graph`), then a lane a channel that
requantizes or thresholds each sum, and the next layer's adder graph reading the lanes.
Registers go by logic depth across the whole run, with no handshake between layers: one
valid bit a stage and one output register, which moves when it is empty or taken.

A requantizer lane is one adder: ``acc * k + C`` with the bias, the rounding's half and
the zero point folded into the constant ``C`` (``k`` in shifts and adds when it is not a
power of two), then the shift, a bit clear for round-half-to-even (an exact tie leaves an
odd quotient one too high: clearing its low bit takes one off), and the clamp, whose
compares with a bound of 0 or a power of two are bit logic. A threshold lane compares the
sum with each threshold (a sign turned into the compare's direction, no negation) and
turns the sorted compares' thermometer code into the output code in bit logic.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from qfab.hw._levels import LevelGraph
from qfab.hw._skid import BeatEveryCycle, OutputRegister
from qfab.hw.adder_graph import csd_digits, solve_cmvm
from qfab.hw.cmvm import cmvm_model, value_ranges
from qfab.hw.multipliers import shape_for_range, shape_range
from qfab.hw.requant import Requantizer
from qfab.hw.threshold import Thresholder

__all__ = ["UnrolledPipeline", "unrolled_stages", "unrolled_levels", "fusable",
           "DEFAULT_LEVELS_PER_STAGE"]

# Carry chains between registers: da4ml's examples cut its pipelines at 5 adders (its
# latency_cutoff), counting constant adds and clamps as none; here they count one.
DEFAULT_LEVELS_PER_STAGE = 5
MAX_LANE_THRESHOLDS = 15  # a thermometer code decoded in bit logic; more: the Thresholder

Term = tuple[int | None, int, int, tuple[int, int]]  # value, left shift, sign, value range


def fusable(kind: str, params: dict) -> bool:
    """Whether a block of ``kind`` can be a layer of the pipeline: an adder graph, a
    requantizer or thresholder with a lane a channel (its constants in logic)."""
    if kind == "cmvm":
        return True
    if kind == "requant":
        return params["channels"] == params["pe"] \
            and params.get("rounding", "half_even") in ("floor", "half_up", "half_even")
    if kind == "threshold":
        return params["channels"] == params["pe"] \
            and np.shape(params["thresholds"])[1] <= MAX_LANE_THRESHOLDS
    return False


def _term_range(t: Term) -> tuple[int, int]:
    _, shift, sign, (lo, hi) = t
    return (lo << shift, hi << shift) if sign > 0 else (-(hi << shift), -(lo << shift))


def _bit_logic(bound: int) -> bool:
    """Whether a compare with ``bound`` is bit logic: 0, or plus or minus a power of two."""
    return bound == 0 or abs(bound) & (abs(bound) - 1) == 0


def _below(x: Any, bound: int, lo: int) -> Any:
    """``x < bound``, ``lo`` the least ``x``: the bits above the bound where
    :func:`_bit_logic`, a comparator otherwise."""
    if bound == 0:
        return x[-1] if lo < 0 else Const(0, 1)
    if not _bit_logic(bound):
        return x < bound
    high = x[abs(bound).bit_length() - 1:]
    if bound > 0:
        return (x[-1] | ~high.any()) if lo < 0 else ~high.any()
    return x[-1] & ~high.all()


def _compare_bits(bound: int, width: int) -> int:
    """Bits a compare of a ``width``-bit value with ``bound`` reads: those above the
    bound where it is bit logic, all of them for a comparator."""
    return width - (abs(bound).bit_length() - 1 if bound else width - 1) \
        if _bit_logic(bound) else width


def _low_zeros(t: Term) -> int:
    """Bits at the bottom of a part that are always zero: its shift, or a constant's."""
    if t[0] is not None:
        return t[1]
    c = t[3][0]
    return (c & -c).bit_length() - 1 if c else 64


def _top(t: Term) -> int:
    """The bit above a part's own bits (its shift plus its value's width, or a constant's
    width): above it the part is its sign bit again, or zeros."""
    lo, hi = t[3]
    return (t[1] if t[0] is not None else 0) + shape_for_range(lo, hi).width


def _adder_luts(lo: int, hi: int, p: Term, q: Term, sub: bool) -> int:
    """LUTs of ``p + q`` (or ``p - q``) with result range ``[lo, hi]``, as synth_xilinx maps
    them: one a result bit from the lowest bit both parts may have (below, one part's bits
    pass through), a sum's only to the top of the higher part (above, both parts repeat
    their top bits: the LUT of the bit below, which Yosys shares, or none); a constant's one
    bits."""
    width = shape_for_range(lo, hi).width
    low = max(_low_zeros(p), _low_zeros(q))
    if (p[0] is None or q[0] is None) and not sub:
        # a constant's: the carry chain adds it, a LUT (an inverter) a one bit of it
        c = p[3][0] if p[0] is None else q[3][0]
        return bin((c % (1 << width)) >> low).count("1")
    return max((width if sub else min(width, max(_top(p), _top(q)))) - low, 0)


class _Builder:
    """The pipeline's values, layer by layer, from the input to the output codes."""

    def __init__(self, layers: list[tuple[str, dict]], levels_per_stage: int):
        self.g = LevelGraph(levels_per_stage)
        self.units: list[tuple[str, Any]] = []
        kind, first = layers[0]
        if kind != "cmvm":
            raise ValueError(f"the first layer must be an adder graph, not {kind!r}")
        in_shape = Shape.cast(first["in_shape"])
        mw = np.shape(first["weights"])[1]
        rng = shape_range(in_shape)
        terms = [(self.g.input(in_shape, f"x{i}"), 0, 1, rng) for i in range(mw)]
        self.in_shape, self.mw = in_shape, mw
        for n, (kind, p) in enumerate(layers):
            if not fusable(kind, p):
                raise ValueError(f"layer {n}: a {kind!r} block with these parameters is "
                                 "not a pipeline layer")
            terms = getattr(self, "_" + kind)(n, p, terms)
        self.out_shape = self.shape
        self.g.outputs = [self._plain(t, f"y{j}") for j, t in enumerate(terms)]

    def _plain(self, t: Term, name: str) -> int:
        """A term as a value of its own (a shift is wiring, a sign a negation)."""
        v, shift, sign, _ = t
        lo, hi = _term_range(t)
        if v is not None and shift == 0 and sign > 0:
            return v
        if v is None:
            return self.g.add((), 0, shape_for_range(0, 0), lambda: Const(0, 1), name)
        shape = shape_for_range(lo, hi)
        return self.g.add((v,), int(sign < 0), shape,
                          lambda x: (x << shift) if sign > 0 else -(x << shift), name,
                          {"adder": shape.width - shift} if sign < 0 else None)

    def _sum(self, parts: list[Term], name: str) -> int:
        """The parts (``None``: a constant, its range's) summed by a balanced tree of adders
        and subtractors, one level each, as a value of its own."""
        if not parts:
            return self.g.add((), 0, shape_for_range(0, 0), lambda: Const(0, 1), name)
        k = 0
        while len(parts) > 1:
            pairs = [self._add2(p, q, f"{name}_{(k := k + 1)}")
                     for p, q in zip(parts[::2], parts[1::2], strict=False)]
            parts = pairs + parts[len(parts) - len(parts) % 2:]
        v, shift, sign, (lo, hi) = parts[0]
        if v is None:
            return self.g.add((), 0, shape_for_range(lo, hi), lambda: Const(lo), name)
        return self._plain(parts[0], name)

    def _add2(self, p: Term, q: Term, name: str) -> Term:
        """``p + q`` as one adder or subtractor (a positive part leads, so no negation)."""
        if p[2] < 0 < q[2]:
            p, q = q, p
        (a_lo, a_hi), (b_lo, b_hi) = ((lo << t[1], hi << t[1]) for t in (p, q)
                                      for lo, hi in [t[3]])
        sub = p[2] != q[2]
        lo, hi = (a_lo - b_hi, a_hi - b_lo) if sub else (a_lo + b_lo, a_hi + b_hi)
        inputs = tuple(t[0] for t in (p, q) if t[0] is not None)
        const = [t[3][0] for t in (p, q) if t[0] is None]

        def build(*xs):
            it = iter(xs)
            a, b = ((next(it) << t[1]) if t[0] is not None else Const(const[0])
                    for t in (p, q))
            return a - b if sub else a + b

        v = self.g.add(inputs, 1, shape_for_range(lo, hi), build, name,
                       {"adder": _adder_luts(lo, hi, p, q, sub)})
        return v, 0, p[2], (lo, hi)

    def _cmvm(self, n: int, p: dict, terms: list[Term]) -> list[Term]:
        weights = np.asarray(p["weights"], np.int64)
        in_shape = Shape.cast(p["in_shape"])
        if len(terms) != weights.shape[1]:
            raise ValueError(f"layer {n}: {weights.shape[1]} inputs after {len(terms)} codes")
        self.units.append(("cmvm", weights))
        graph = solve_cmvm(weights)
        ranges = value_ranges(graph, in_shape)
        ids = [self._plain(t, f"l{n}_x{i}") for i, t in enumerate(terms)]
        for k, node in enumerate(graph.nodes):
            v = graph.inputs + k
            sa, sb = node.shift_a, node.shift_b
            build = (lambda a, b, sa=sa, sb=sb: (a << sa) + (b << sb)) if node.sign_b > 0 \
                else (lambda a, b, sa=sa, sb=sb: (a << sa) - (b << sb))
            luts = _adder_luts(*ranges[v], (ids[node.a], sa, 1, ranges[node.a]),
                               (ids[node.b], sb, node.sign_b, ranges[node.b]), node.sign_b < 0)
            ids.append(self.g.add((ids[node.a], ids[node.b]), 1,
                                  shape_for_range(*ranges[v]), build, f"l{n}_n{v}",
                                  {"adder": luts}))
        self.shape = Shape.cast(p["acc_shape"])
        return [(None, 0, 0, (0, 0)) if o is None else (ids[o[0]], o[1], o[2], ranges[o[0]])
                for o in graph.outputs]

    def _lanes(self, n: int, kind: str, unit: Any, lane: Any, terms: list[Term]
               ) -> list[Term]:
        """A lane a channel of ``unit`` (a Requantizer or Thresholder, read for its
        parameters), each made by ``lane``."""
        unit._MustUse__silence = True  # never elaborated
        self.units.append((kind, unit))
        self.shape = unit.out_shape
        return [lane(n, c, unit, t) for c, t in enumerate(terms)]

    def _requant(self, n: int, p: dict, terms: list[Term]) -> list[Term]:
        return self._lanes(n, "requant", Requantizer(**p), self._requant_lane, terms)

    def _requant_lane(self, n: int, c: int, unit: Requantizer, t: Term) -> Term:
        k, s = int(unit._hw_mult[c]), int(unit._hw_shift[c])
        bias, zp, rounding = int(unit.bias[c]), unit.zero_point, unit.rounding
        if k:
            e = (k & -k).bit_length() - 1  # k's trailing zeros go into the shift
            k, s = k >> min(e, s), s - min(e, s)
        half = 1 << (s - 1) if s and rounding != "floor" else 0
        even = rounding == "half_even" and s > 0
        zp_after = zp if even and zp & 1 else 0  # an odd one would change the parity
        const = bias * k + half + ((zp - zp_after) << s)
        v, shift, sign, _ = t
        acc_lo, acc_hi = _term_range(t)
        r_lo, r_hi = acc_lo * k + const, acc_hi * k + const
        parts = [] if v is None else [(v, shift + d, sign * g, t[3])
                                       for d, g in csd_digits(k)]
        r = self._sum(parts + ([(None, 0, 1, (const, const))] if const else []),
                      f"l{n}_r{c}")
        c_lo, c_hi = (r_lo >> s) - even, r_hi >> s
        low, high = unit.lo - zp_after, unit.hi - zp_after
        out_shape = unit.out_shape
        levels = int((c_lo < low and not _bit_logic(low))
                     or (c_hi > high and not _bit_logic(high + 1)))

        def lane(x):
            q = x >> s if s else x
            if even:
                tie = ~x[:s].any()
                q = Cat(q[0] & ~tie, q[1:])
                q = q.as_signed() if x.shape().signed else q
            out = q[:out_shape.width] if len(q) > out_shape.width else q
            if c_hi > high:
                out = Mux(_below(q, high + 1, c_lo), out, high)
            if c_lo < low:
                out = Mux(_below(q, low, c_lo), low, out)
            return out + zp_after if zp_after else out

        q_width = shape_for_range(c_lo, c_hi).width
        cost = {"mux": out_shape.width if c_lo < low or c_hi > high else 0,
                 "cmpk": (s if even else 0)
                 + (_compare_bits(low, q_width) if c_lo < low else 0)
                 + (_compare_bits(high + 1, q_width) if c_hi > high else 0),
                 "adder": out_shape.width if zp_after else 0}
        out = self.g.add((r,), levels + bool(zp_after), out_shape, lane, f"l{n}_q{c}", cost)
        return out, 0, 1, (max(unit.lo, c_lo + zp_after), min(unit.hi, c_hi + zp_after))

    def _threshold(self, n: int, p: dict, terms: list[Term]) -> list[Term]:
        return self._lanes(n, "threshold", Thresholder(**p), self._threshold_lane, terms)

    def _threshold_lane(self, n: int, c: int, unit: Thresholder, t: Term) -> Term:
        v, shift, sign, (v_lo, v_hi) = t
        thr = [int(x) for x in unit.thresholds[c]]
        # acc >= thr as a compare of the value: v >= ceil(thr / 2**shift), or for a
        # negated term v < floor(-thr / 2**shift) + 1
        # reached: acc >= thr, as a compare of the value: v >= ceil(thr / 2**shift), or
        # for a negated term v < floor(-thr / 2**shift) + 1
        bounds = [-((-x) >> shift) if sign > 0 else ((-x) >> shift) + 1 for x in thr]
        fixed: list[bool | None] = []
        for x, b in zip(thr, bounds, strict=True):
            if v is None:
                fixed.append(0 >= x)
            elif b <= v_lo or b > v_hi:
                fixed.append((b <= v_lo) == (sign > 0))
            else:
                fixed.append(None)
        levels = int(any(f is None and not _bit_logic(b) for b, f in zip(bounds, fixed,
                                                                          strict=True)))
        width = unit.out_shape.width
        codes = [(unit.out_bias + unit.out_scale * m) & ((1 << width) - 1)
                 for m in range(len(thr) + 1)]

        def lane(x=None):
            reached = []
            for b, f in zip(bounds, fixed, strict=True):
                if f is not None:
                    reached.append(Const(int(f), 1))
                else:
                    below = _below(x, b, v_lo)
                    reached.append(~below if sign > 0 else below)
            ones = [Const(1, 1)] + reached + [Const(0, 1)]
            exactly = [ones[m] & ~ones[m + 1] for m in range(len(thr) + 1)]
            bits = []
            for j in range(width):
                hits = [exactly[m] for m, code in enumerate(codes) if code >> j & 1]
                bits.append(Cat(*hits).any() if hits else Const(0, 1))
            return Cat(*bits)

        v_width = shape_for_range(v_lo, v_hi).width
        cost = {"cmpk": sum(_compare_bits(b, v_width) for b, f in zip(bounds, fixed,
                                                                       strict=True)
                            if f is None), "mux": width}
        out = self.g.add(() if v is None else (v,), levels if v is not None else 0,
                         unit.out_shape, lane, f"l{n}_t{c}", cost)
        lo, hi = sorted([unit.out_bias, unit.out_bias + unit.out_scale * len(thr)])
        return out, 0, 1, (lo, hi)


def _builder(layers: list[tuple[str, dict]], levels_per_stage: int) -> _Builder:
    return _Builder([(k, dict(p)) for k, p in layers], levels_per_stage)


def unrolled_stages(*, layers: list, levels_per_stage: int = DEFAULT_LEVELS_PER_STAGE,
                    **_: Any) -> int:
    """Registers a beat passes before the output register (the unit's ``stages``), from the
    unit's keyword arguments, without building it."""
    return _builder(layers, levels_per_stage).g.stages


def unrolled_levels(layers: list, levels_per_stage: int = DEFAULT_LEVELS_PER_STAGE
                    ) -> LevelGraph:
    """The scheduled graph of values (the cost model counts its adders and registers)."""
    return _builder(layers, levels_per_stage).g


class UnrolledPipeline(BeatEveryCycle, wiring.Component):
    """Unrolled layers in one pipeline, one vector a cycle.

    Parameters
    ----------
    layers : list of (kind, params)
        ``("cmvm", ...)``, ``("requant", ...)`` or ``("threshold", ...)`` with the keyword
        arguments of :class:`~qfab.hw.cmvm.ConstantMatrixVectorUnit`,
        :class:`~qfab.hw.requant.Requantizer` or :class:`~qfab.hw.threshold.Thresholder`
        (each with a lane a channel: :func:`fusable`); the first an adder graph.
    levels_per_stage : int
        Carry chains between registers (the cycle budget's knob).

    Members
    -------
    i_stream : In(stream.Signature(ArrayLayout(in_shape, MW)))
        One input vector a beat.
    o_stream : Out(stream.Signature(ArrayLayout(out_shape, channels)))
        The last layer's outputs, ``latency`` cycles after the input.
    """

    def __init__(self, *, layers: list, levels_per_stage: int = DEFAULT_LEVELS_PER_STAGE):
        if not layers:
            raise ValueError("layers must name at least one layer")
        self._layers = [(k, dict(p)) for k, p in layers]
        self._built = _Builder(self._layers, levels_per_stage)
        self._per_stage = levels_per_stage
        b = self._built
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(b.in_shape, b.mw))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(b.out_shape,
                                                              len(b.g.outputs)))),
        })

    layers = property(lambda self: list(self._layers))
    levels_per_stage = property(lambda self: self._per_stage)

    @cached_property
    def stages(self) -> int:
        """Registers a beat passes before the output register."""
        return self._built.g.stages

    def model(self, vectors: np.ndarray) -> np.ndarray:
        """Exact outputs for input vectors ``[..., MW]``: the layers' own models in turn."""
        x = np.asarray(vectors, np.int64)
        for kind, unit in self._built.units:
            x = cmvm_model(unit, x).astype(np.int64) if kind == "cmvm" else unit.model(x)
        return x

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        b = self._built
        i_s, o_s = self.i_stream, self.o_stream
        layout = data.ArrayLayout(b.out_shape, len(b.g.outputs))
        out_reg = OutputRegister(m, o_s)
        outs, moves = b.g.build(m, [i_s.payload[i] for i in range(b.mw)])
        valid = [i_s.valid] + [Signal(name=f"valid{s}") for s in range(1, self.stages + 1)]
        moves += [valid[s].eq(valid[s - 1]) for s in range(1, self.stages + 1)]
        m.d.comb += i_s.ready.eq(out_reg.advance)
        with m.If(out_reg.advance):
            m.d.sync += moves
        result = Signal(layout)
        m.d.comb += [result[j].eq(y) for j, y in enumerate(outs)]
        out_reg.push(valid[-1], result)
        return m
