"""Fully unrolled matrix-vector unit with constant weights: ``y = W @ x``, one vector a cycle.

Each product sees one weight, so there are no multipliers and no weight memory: the whole
matrix is an adder graph (:mod:`qfab.hw.adder_graph`: canonical signed digits, pairs shared
across outputs, zero weights free), pipelined with a register after every
``adders_per_stage`` adder levels. Values that skip a stage ride in delay registers, so every
output leaves in the same cycle. Each node is as wide as its exact range needs.

The first adder stage reads the input beat as it arrives (the producer's output register
holds it), the later stages follow their registers, then the output register without a
spare (:class:`~qfab.hw._skid.OutputRegister`): every register moves when the output is
empty or taken, so the unit stalls as a whole and ``ready`` follows the consumer's.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from qfab.hw._checks import check_count, check_shape, shape_range
from qfab.hw._skid import BeatEveryCycle, OutputRegister
from qfab.hw.adder_graph import AdderGraph, evaluate, solve_cmvm
from qfab.hw.multipliers import shape_for_range

__all__ = ["ConstantMatrixVectorUnit", "cmvm_model", "cmvm_stages", "DEFAULT_ADDERS_PER_STAGE"]

# Adder levels between registers: four short carry chains fit a 100 MHz cycle on 7-series.
DEFAULT_ADDERS_PER_STAGE = 4


def cmvm_model(weights: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """What the unit computes: ``vectors @ weights.T`` (``[..., MW]`` -> ``[..., MH]``),
    exact (Python ints in an object array)."""
    return np.asarray(vectors).astype(object) @ np.asarray(weights).astype(object).T


def _region(graph: AdderGraph, value: int, adders_per_stage: int) -> int:
    """The pipeline stage whose logic computes ``value`` (inputs: the first's)."""
    level = graph.levels[value]
    return 0 if level == 0 else (level - 1) // adders_per_stage


def cmvm_stages(*, weights: np.ndarray, adders_per_stage: int = DEFAULT_ADDERS_PER_STAGE,
                share: bool = True, **_shapes: Any) -> int:
    """Registers a beat passes before the output register (the unit's ``stages``), from the
    same keyword arguments, without building the unit."""
    graph = solve_cmvm(np.asarray(weights, np.int64), share=share)
    return max((_region(graph, o[0], adders_per_stage) for o in graph.outputs
                    if o is not None), default=0)


def delay_registers(graph: AdderGraph, adders_per_stage: int) -> list[tuple[int, int]]:
    """The ``(value, stage)`` pairs that are registers: a value made in an earlier stage
    than the one reading it rides in one register a stage (the output stage included)."""
    last = 0
    for o in graph.outputs:
        if o is not None:
            last = max(last, _region(graph, o[0], adders_per_stage))
    need: dict[int, int] = {}  # value -> the latest stage reading it
    for k, n in enumerate(graph.nodes):
        r = _region(graph, graph.inputs + k, adders_per_stage)
        for v in (n.a, n.b):
            need[v] = max(need.get(v, 0), r)
    for o in graph.outputs:
        if o is not None:
            need[o[0]] = last
    return [(v, r) for v, upto in sorted(need.items())
            for r in range(_region(graph, v, adders_per_stage) + 1, upto + 1)]


def value_ranges(graph: AdderGraph, in_shape: Any) -> list[tuple[int, int]]:
    """Range of every value of the graph (inputs, then nodes), exact: each value is a sum
    of the inputs times integers, and the inputs vary independently. (Interval arithmetic
    node by node is wider where two operands share an input: ``(x + y) - (x - y)``.)"""
    key = (id(graph), repr(Shape.cast(in_shape)))
    if _RANGES.get(key, (None,))[0] is not graph:
        if len(_RANGES) >= 16:
            _RANGES.pop(next(iter(_RANGES)))
        _RANGES[key] = graph, _exact_ranges(graph, in_shape)
    return _RANGES[key][1]


_RANGES: dict[tuple, tuple] = {}  # the unit and the cost model ask for the same graphs


def _exact_ranges(graph: AdderGraph, in_shape: Any) -> list[tuple[int, int]]:
    lo, hi = shape_range(Shape.cast(in_shape))
    bounds = [(lo, hi)] * graph.inputs  # interval arithmetic: bounds the exact ranges
    for n in graph.nodes:
        (alo, ahi), (blo, bhi) = bounds[n.a], bounds[n.b]
        blo, bhi = (blo, bhi) if n.sign_b > 0 else (-bhi, -blo)
        bounds.append(((alo << n.shift_a) + (blo << n.shift_b),
                       (ahi << n.shift_a) + (bhi << n.shift_b)))
    if not graph.nodes or max(max(-a, b) for a, b in bounds) >= 1 << 62:
        return bounds  # exact sums would not fit int64
    n_in = graph.inputs
    coef = np.zeros((n_in + len(graph.nodes), n_in), np.int64)
    coef[np.arange(n_in), np.arange(n_in)] = 1
    for k, n in enumerate(graph.nodes):
        coef[n_in + k] = (coef[n.a] << n.shift_a) + n.sign_b * (coef[n.b] << n.shift_b)
    low = np.where(coef > 0, coef * lo, coef * hi).sum(axis=1)
    high = np.where(coef > 0, coef * hi, coef * lo).sum(axis=1)
    return list(zip(low.tolist(), high.tolist(), strict=True))


class ConstantMatrixVectorUnit(BeatEveryCycle, wiring.Component):
    """``y = W @ x`` for a constant integer ``W``, fully unrolled and pipelined.

    Parameters
    ----------
    weights : ndarray of int, shape [MH, MW]
        Weight codes, zero points already subtracted.
    in_shape : ShapeLike
        Shape of one input element.
    acc_shape : ShapeLike
        Shape of one output; results wrap modulo its width, so one that holds every dot
        product (the compiler's range analysis) gives exact results.
    adders_per_stage : int
        Adder levels between pipeline registers (the cycle budget's knob).
    share : bool
        Share common pairs of terms across outputs (on by default).

    Members
    -------
    i_stream : In(stream.Signature(ArrayLayout(in_shape, MW)))
        One vector a beat.
    o_stream : Out(stream.Signature(ArrayLayout(acc_shape, MH)))
        One result vector a beat, ``latency`` cycles after its input.
    """

    def __init__(self, *, weights: np.ndarray, in_shape: Any, acc_shape: Any,
                 adders_per_stage: int = DEFAULT_ADDERS_PER_STAGE, share: bool = True):
        w = np.asarray(weights)
        if w.ndim != 2 or w.size == 0:
            raise ValueError(f"weights must be a non-empty [MH, MW] matrix, not shape {w.shape}")
        if not (np.issubdtype(w.dtype, np.integer) or w.dtype == object):
            raise ValueError(f"weights must be integers, not {w.dtype}")
        self._weights = w.astype(np.int64)
        self._weights.setflags(write=False)
        self._in_shape = check_shape("in_shape", in_shape)
        self._acc_shape = check_shape("acc_shape", acc_shape)
        self._per_stage = check_count("adders_per_stage", adders_per_stage)
        self._share = bool(share)
        mh, mw = w.shape
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(self._in_shape, mw))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(self._acc_shape, mh))),
        })

    weights = property(lambda self: self._weights)
    in_shape = property(lambda self: self._in_shape)
    acc_shape = property(lambda self: self._acc_shape)
    adders_per_stage = property(lambda self: self._per_stage)
    mh = property(lambda self: self._weights.shape[0])
    mw = property(lambda self: self._weights.shape[1])

    @cached_property
    def graph(self) -> AdderGraph:
        return solve_cmvm(self._weights, share=self._share)

    @cached_property
    def ranges(self) -> list[tuple[int, int]]:
        """Range of every value of the graph (inputs, then nodes), by interval arithmetic."""
        return value_ranges(self.graph, self._in_shape)

    def _region(self, value: int) -> int:
        return _region(self.graph, value, self._per_stage)

    @property
    def stages(self) -> int:
        """Registers a beat passes before the output register: one after every
        ``adders_per_stage`` adder levels but the last."""
        return cmvm_stages(weights=self._weights, adders_per_stage=self._per_stage,
                           share=self._share)

    def cycles(self, vectors: int) -> int:
        """Cycles from the first input beat to the last output beat, both included, for a
        continuous run of ``vectors`` vectors without back-pressure."""
        return vectors + self.latency

    @cached_property
    def _delays(self) -> dict[int, list[tuple[int, int]]]:
        """Delay registers by the value they carry, in stage order."""
        out: dict[int, list[tuple[int, int]]] = {}
        for value, stage in delay_registers(self.graph, self._per_stage):
            out.setdefault(value, []).append((value, stage))
        return out

    def model(self, vectors: np.ndarray) -> np.ndarray:
        """Exact results for ``vectors`` ``[..., MW]``, wrapped to ``acc_shape`` as the
        hardware's are (identical whenever the accumulator holds the sums)."""
        y = evaluate(self.graph, vectors)
        bits = self._acc_shape.width
        wrapped = np.vectorize(lambda v: ((int(v) + (1 << (bits - 1))) % (1 << bits))
                               - (1 << (bits - 1)) if self._acc_shape.signed
                               else int(v) % (1 << bits), otypes=[object])(y)
        return wrapped.astype(np.int64) if bits <= 63 else wrapped

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        g = self.graph
        i_s, o_s = self.i_stream, self.o_stream
        o_layout = data.ArrayLayout(self._acc_shape, self.mh)
        skid = OutputRegister(m, o_s)
        shapes = [shape_for_range(lo, hi) for lo, hi in self.ranges]
        staged: dict[tuple[int, int], Any] = {}
        moves: list = []  # register updates, all made only on advance

        for i in range(g.inputs):
            staged[i, 0] = i_s.payload[i]
            for value, stage in self._delays.get(i, ()):
                delayed = Signal(shapes[value], name=f"v{value}_r{stage}")
                moves.append(delayed.eq(staged[value, stage - 1]))
                staged[value, stage] = delayed

        for k, n in enumerate(g.nodes):
            v = g.inputs + k
            r = self._region(v)
            a, b = staged[n.a, r] << n.shift_a, staged[n.b, r] << n.shift_b
            sig = Signal(shapes[v], name=f"n{v}")
            m.d.comb += sig.eq(a + b if n.sign_b > 0 else a - b)
            staged[v, r] = sig
            for value, stage in self._delays.get(v, ()):
                reg = Signal(shapes[value], name=f"v{value}_r{stage}")
                moves.append(reg.eq(staged[value, stage - 1]))
                staged[value, stage] = reg

        last = self.stages
        result = Signal(o_layout)
        for j, o in enumerate(g.outputs):
            if o is not None:
                term = staged[o[0], last] << o[1]
                m.d.comb += result[j].eq(term if o[2] > 0 else -term)

        valid = [i_s.valid] + [Signal(name=f"valid{s}") for s in range(1, self.stages + 1)]
        moves += [valid[s].eq(valid[s - 1]) for s in range(1, self.stages + 1)]
        m.d.comb += i_s.ready.eq(skid.advance)
        with m.If(skid.advance):
            m.d.sync += moves
        skid.push(valid[-1], result)
        return m
