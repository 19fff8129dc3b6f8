"""Fully unrolled layers as one pipeline: adder graphs, requantizer and threshold lanes.

Where every layer of a run is unrolled (each product sees one weight, each channel has its
own lane), the run is one graph of values (:mod:`qfab.hw._levels`): the adder graphs of the
constant matrix-vector products (:mod:`qfab.hw.adder_graph`), then a lane a channel that
requantizes or thresholds each sum, and the next layer's adder graph reading the lanes.
Registers go by logic depth across the whole run, with no handshake between layers: one
valid bit a stage and one output register, which moves when it is empty or taken.

The lanes, a requantizer's or a thresholder's channel in bit logic, are
:mod:`qfab.hw.unrolled_lanes`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
from amaranth.hdl import Const, Module, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from qfab.hw._levels import LevelGraph
from qfab.hw._skid import BeatEveryCycle, OutputRegister
from qfab.hw.adder_graph import solve_cmvm
from qfab.hw.cmvm import cmvm_model, value_ranges
from qfab.hw.multipliers import shape_for_range, shape_range
from qfab.hw.requant import Requantizer
from qfab.hw.threshold import Thresholder
from qfab.hw.unrolled_lanes import Term, requant_lane, term_range, threshold_lane

__all__ = ["UnrolledPipeline", "unrolled_stages", "unrolled_levels", "fusable",
           "DEFAULT_LEVELS_PER_STAGE"]

# Carry chains between registers: da4ml's examples cut its pipelines at 5 adders (its
# latency_cutoff), counting constant adds and clamps as none; here they count one.
DEFAULT_LEVELS_PER_STAGE = 5
MAX_LANE_THRESHOLDS = 15  # a thermometer code decoded in bit logic; more: the Thresholder


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
        lo, hi = term_range(t)
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
        return [lane(self, n, c, unit, t) for c, t in enumerate(terms)]

    def _requant(self, n: int, p: dict, terms: list[Term]) -> list[Term]:
        return self._lanes(n, "requant", Requantizer(**p), requant_lane, terms)

    def _threshold(self, n: int, p: dict, terms: list[Term]) -> list[Term]:
        return self._lanes(n, "threshold", Thresholder(**p), threshold_lane, terms)

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
