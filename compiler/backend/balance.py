"""Balanced folding: the cycle budget whose folding keeps the multipliers busiest.

Given a cycle budget, every MAC stage gets the fewest multipliers that meet it
(:func:`~qfab.compiler.backend.plan.choose_folding`). A stage's PE and SIMD divide its matrix,
so its cycles rarely equal the budget: multiplier utilisation (busy multiplier-cycles over
available ones, ``MACs / (multipliers x II)``) depends on the budget. The folding chosen
changes only where the budget crosses a cycle count some stage can reach, so those counts
are the candidates, each scored from the stages' matrices without planning again.
"""

from __future__ import annotations

from dataclasses import dataclass

from qfab.compiler.backend.mappings.matrix_vector import depthwise_options
from qfab.compiler.backend.plan import BlockSpec, HwPlan, divisors, folded_cycles

# The default searches budgets between these fractions of the reference II: a balanced
# design is about as fast as the one it replaces (a little slower when that keeps its
# multipliers busier), at most two and a half times as fast (CNV's busiest folding is
# 2.25 times as fast, with fewer multipliers than at most 4 x 8 a layer).
SEARCH = (0.4, 1.25)


@dataclass(frozen=True)
class MacLayer:
    """A MAC stage's matrix ``[mh, mw]``, the vectors it multiplies an inference, and its
    options: (multipliers, cycles) for every PE dividing ``mh`` and SIMD dividing ``mw``
    (a sliding window's pace included), fewest multipliers first."""

    mh: int
    mw: int
    vectors: int
    options: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, mh: int, mw: int, vectors: int, window: BlockSpec | None = None) -> MacLayer:
        opts = sorted({(pe * simd, folded_cycles(mh, mw, vectors, pe, simd, window))
                       for pe in divisors(mh) for simd in divisors(mw)})
        return cls(mh, mw, vectors, tuple(opts))

    @classmethod
    def depthwise(cls, channels: int, taps: int, kw: int, pixels: int) -> MacLayer:
        """A depthwise stage, ``[1, channels]`` a tap and pixel: its lanes, ``simd``
        channels by ``columns`` kernel columns (:func:`depthwise_options`)."""
        opts = sorted({(lanes, cycles)
                       for lanes, _, _, cycles in depthwise_options(channels, taps, kw, pixels)})
        return cls(1, channels, pixels * taps, tuple(opts))

    def folding(self, budget: int) -> tuple[int, int]:
        """(multipliers, cycles) of the fewest multipliers meeting ``budget``, else all."""
        for mults, cycles in self.options:
            if cycles <= budget:
                return mults, cycles
        return self.options[-1]


def multipliers(hw: HwPlan) -> int:
    """Products a cycle the plan's MAC stages can make (an adder graph counts its matrix)."""
    n = 0
    for s in hw.stages:
        for b in s.blocks:
            if b.kind in ("mvu", "cmvm"):
                n += b.in_elems * b.out_elems
            elif b.kind == "depthwise":
                n += b.params["simd"] * b.params.get("columns", 1)
    return n


def mac_layers(hw: HwPlan) -> list[MacLayer]:
    """The plan's MAC stages: matrix-vector ones (their folding names a matrix) and
    depthwise ones."""
    layers = []
    for s in hw.stages:
        if "mh" in s.folding:
            f = s.folding
            window = next((b for b in s.blocks if b.kind == "window"), None)
            layers.append(MacLayer.of(f["mh"], f["mw"], s.macs // (f["mh"] * f["mw"]), window))
        elif any(b.kind == "depthwise" for b in s.blocks):
            p = next(b for b in s.blocks if b.kind == "depthwise").params
            kw = next(b for b in s.blocks if b.kind == "window").params["kernel"][1]
            layers.append(MacLayer.depthwise(p["channels"], p["taps"], kw,
                                             s.macs // (p["channels"] * p["taps"])))
    return layers


def _is_mac(stage) -> bool:
    return "mh" in stage.folding or any(b.kind == "depthwise" for b in stage.blocks)


def predicted_utilisation(layers: list[MacLayer], budget: int, floor: int = 0) -> float:
    """MAC utilisation of the layers folded for ``budget``, the II being their slowest
    stage or ``floor`` (the stages that do not fold), whichever is longer."""
    picks = [layer.folding(budget) for layer in layers]
    mults = sum(m for m, _ in picks)
    ii = max([floor] + [c for _, c in picks])
    macs = sum(layer.vectors * layer.mh * layer.mw for layer in layers)
    return macs / (mults * ii) if mults else 1.0


def balanced_budget(reference: HwPlan) -> int:
    """The cycle budget for a balanced design about as fast as ``reference`` with no more
    multipliers: among the budgets within ``SEARCH`` of its II, the one with the highest
    predicted utilisation (ties: the faster)."""
    layers = mac_layers(reference)
    top = reference.ii_cycles
    if not layers:
        return top
    floor = max((s.cycles for s in reference.stages if not _is_mac(s)), default=0)
    most = multipliers(reference)
    low, high = max(int(top * SEARCH[0]), 1), int(top * SEARCH[1])
    candidates = {c for layer in layers for _, c in layer.options if low <= c <= high} | {top}
    candidates = [b for b in candidates
                  if sum(layer.folding(b)[0] for layer in layers) <= most] or [top]
    return max(candidates, key=lambda b: (predicted_utilisation(layers, b, floor), -b))


def balanced_plan(graph, *, clock_hz: float = 100e6) -> HwPlan:
    """A balanced design with double-buffered MVUs (so that a stage with fewer multipliers
    does not hold the one before it): about as fast as at most ``DEFAULT_MAX_PE`` x
    ``DEFAULT_MAX_SIMD`` a layer would make it, each stage given the fewest multipliers
    that meet the budget :func:`balanced_budget` picks. Its join FIFOs hold one inference;
    ``qfab.compile`` deepens them by the cycle model
    (:func:`qfab.cost_model.fifo_sizing.sized_fifos`)."""
    from qfab.compiler.backend.plan import plan

    reference = plan(graph, clock_hz=clock_hz, double_buffered=True)
    return plan(graph, clock_hz=clock_hz, budget_cycles=balanced_budget(reference),
                double_buffered=True)
