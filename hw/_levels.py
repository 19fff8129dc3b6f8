"""Values placed in pipeline stages by logic depth, with the registers that carry them.

A fully unrolled chain of layers is one graph of values, each made from earlier ones by
logic ``delay`` carry chains deep (an adder or a comparator counts one level; multiplexers
and bit logic count none). A register goes after every ``levels_per_stage`` levels, the same
cut for the whole chain, so a layer boundary costs no register of its own (as da4ml
pipelines its traces). A value is made as early as its inputs allow (as soon as possible),
unless its levels would straddle a cut: then it starts after the cut. A value read in a later
stage than its own rides in one register a stage.

:class:`LevelGraph` is plain data: the schedule, its registers and the latency are known
without building hardware (the cost and cycle models read them); :meth:`LevelGraph.build`
makes the Amaranth logic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from amaranth.hdl import Shape, Signal

__all__ = ["LevelGraph"]


@dataclass
class _Value:
    inputs: tuple[int, ...]
    delay: int
    shape: Shape
    build: Callable[..., Any] | None  # the input signals -> an expression; None: an input
    level: int
    stage: int
    name: str
    cost: dict[str, int]  # the cost model's features of its logic (adder bits, ...)


class LevelGraph:
    """A graph of values scheduled into pipeline stages of ``levels_per_stage`` levels."""

    def __init__(self, levels_per_stage: int):
        if isinstance(levels_per_stage, bool) or not isinstance(levels_per_stage, int) \
                or levels_per_stage < 1:
            raise ValueError(f"levels_per_stage must be a positive int, not "
                             f"{levels_per_stage!r}")
        self.per_stage = levels_per_stage
        self.values: list[_Value] = []
        self.outputs: list[int] = []

    def input(self, shape: Shape, name: str) -> int:
        """A value the chain's input beat holds (stage 0, level 0)."""
        self.values.append(_Value((), 0, shape, None, 0, 0, name, {}))
        return len(self.values) - 1

    def add(self, inputs: tuple[int, ...], delay: int, shape: Shape,
            build: Callable[..., Any], name: str, cost: dict[str, int] | None = None) -> int:
        """A value ``build(*input signals)`` of ``shape``, ``delay`` levels after its
        latest input (at most ``levels_per_stage``); ``cost``: what its logic counts in the
        cost model's features."""
        k = self.per_stage
        if delay > k:
            raise ValueError(f"{name}: {delay} levels do not fit a stage of {k}")
        start = max((self.values[i].level for i in inputs), default=0)
        if delay:
            if start // k != (start + delay - 1) // k:
                start = -(-start // k) * k
            stage = start // k
        else:
            stage = max((self.values[i].stage for i in inputs), default=0)
        self.values.append(_Value(tuple(inputs), delay, shape, build, start + delay, stage,
                                  name, cost or {}))
        return len(self.values) - 1

    @property
    def stages(self) -> int:
        """Registers a beat passes before the output register: the last output's stage."""
        return max((self.values[v].stage for v in self.outputs), default=0)

    def registers(self) -> list[tuple[int, int]]:
        """The ``(value, stage)`` pairs that are registers: a value read in a later stage
        than its own, one a stage up to the latest reader's (the outputs' the last)."""
        need: dict[int, int] = {}
        for v in self.values:
            for i in v.inputs:
                need[i] = max(need.get(i, 0), v.stage)
        last = self.stages
        for o in self.outputs:
            need[o] = last
        return [(v, s) for v, upto in sorted(need.items())
                for s in range(self.values[v].stage + 1, upto + 1)]

    def cost(self) -> Counter:
        """The features of every value's logic, summed."""
        total: Counter = Counter()
        for v in self.values:
            total.update(v.cost)
        return total

    def register_bits(self) -> int:
        return sum(self.values[v].shape.width for v, _ in self.registers())

    def build(self, m: Any, inputs: list[Any]) -> tuple[list[Any], list[Any]]:
        """The logic into ``m``: ``inputs`` are the input values' signals, in the order
        :meth:`input` made them. Returns the outputs in the last stage and the register
        updates (to be made together, when the pipeline advances)."""
        copies: dict[int, list[tuple[int, int]]] = {}
        for v, s in self.registers():
            copies.setdefault(v, []).append(s)
        at: dict[tuple[int, int], Any] = {}
        moves: list[Any] = []
        fed = iter(inputs)
        for idx, v in enumerate(self.values):
            if v.build is None:
                at[idx, v.stage] = next(fed)
            else:
                # kept apart: Yosys would merge chained adds into multi-operand sums, which
                # synth_xilinx maps to more LUTs than a carry chain an adder
                sig = Signal(v.shape, name=v.name, attrs={"keep": 1})
                m.d.comb += sig.eq(v.build(*(at[i, v.stage] for i in v.inputs)))
                at[idx, v.stage] = sig
            for s in copies.get(idx, ()):
                reg = Signal(v.shape, name=f"{v.name}_r{s}")
                moves.append(reg.eq(at[idx, s - 1]))
                at[idx, s] = reg
        last = self.stages
        return [at[o, last] for o in self.outputs], moves
