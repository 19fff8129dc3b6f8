"""Resource and cycle estimate of a whole plan on a board, without building hardware."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from qfab.compiler.backend.plan import HwPlan
from qfab.cost_model.blocks import LUT_FEATURES, BlockCost, block_cost
from qfab.cost_model.boards import Board, load_board
from qfab.cost_model.constants import LUT_WEIGHTS
from qfab.cost_model.timing import plan_timing


@dataclass
class StageEstimate:
    """One stage's share: its steady-state cycles per inference and its resources."""

    name: str
    op: str
    cycles: int
    lut: int
    ff: int
    dsp: int
    bram: int
    blocks: list[str] = field(default_factory=list)


@dataclass
class Estimate:
    """What a plan costs on a board.

    Members
    -------
    board, family : str
    lut, ff, dsp, bram : int
        Totals; ``bram`` counts ``bram_unit`` blocks (RAMB18, DP16KD or SB_RAM40_4K).
    cycles : int
        Cycles of one inference, first input beat to last output beat, both counted.
    latency_cycles : int
        Cycle of the first output beat of one inference.
    ii_cycles : int
        Initiation interval: cycles between inferences at steady state, by the handshake
        model (:func:`qfab.cost_model.timing.steady_ii`); co-simulation measures the same.
    clock_hz : float
        The board's clock.
    throughput : float
        Inferences per second at steady state: ``clock_hz / ii_cycles``.
    fits : bool
        Whether every resource fits the board.
    utilization : dict
        Fraction of the board's LUT, FF, DSP and BRAM used.
    stages : list of StageEstimate
    clock_source : str
        Where ``clock_hz`` comes from: ``"board"``, the board's clock, assumed (not a
        predicted or routed Fmax; ``qfab build`` measures the routed one).
    cycles_exact : bool
        Whether ``cycles``, ``latency_cycles`` and ``ii_cycles`` are the handshake model's
        (True) or, for a design too long to run it on, lower bounds
        (:func:`qfab.cost_model.timing.lower_bounds`).
    """

    board: str
    family: str
    lut: int
    ff: int
    dsp: int
    bram: int
    bram_unit: str
    cycles: int
    latency_cycles: int
    ii_cycles: int
    clock_hz: float
    throughput: float
    fits: bool
    utilization: dict[str, float]
    stages: list[StageEstimate]
    clock_source: str = "board"
    cycles_exact: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def report(self) -> str:
        """Markdown: totals against the board, then one row a stage."""
        u = self.utilization
        lines = [f"## Estimate on {self.board} ({self.family})", "",
                 "| resource | used | of board |", "|---|---|---|",
                 f"| LUT | {self.lut} | {u['lut']:.1%} |", f"| FF | {self.ff} | {u['ff']:.1%} |",
                 f"| DSP | {self.dsp} | {u['dsp']:.1%} |",
                 f"| BRAM ({self.bram_unit}) | {self.bram} | {u['bram']:.1%} |", "",
                 f"Fits: {'yes' if self.fits else 'NO'}. Latency {self.latency_cycles} cycles, "
                 f"one inference {self.cycles} cycles, initiation interval {self.ii_cycles} "
                 f"cycles: {self.throughput:,.0f} inferences/s at "
                 f"{self.clock_hz / 1e6:g} MHz (the board's clock, assumed; `qfab build` "
                 "gives the routed Fmax)." + ("" if self.cycles_exact else
                                              " The cycle figures are lower bounds: the "
                                              "design is too long for the cycle model."), "",
                 "| stage | op | cycles | LUT | FF | DSP | BRAM |", "|---|---|---|---|---|---|---|"]
        for s in self.stages:
            lines.append(f"| {s.name} | {s.op} | {s.cycles} | {s.lut} | {s.ff} | {s.dsp} | "
                         f"{s.bram} |")
        return "\n".join(lines) + "\n"


def lut_count(cost: BlockCost, family: str) -> int:
    """LUTs of a block: its memories' and product tables' LUTs plus its weighted LUT
    features."""
    w = LUT_WEIGHTS[family]
    return round(cost.mem_lut + cost.table_lut + cost.adder_lut
                 + sum(w[f] * cost.features[f] for f in LUT_FEATURES))


def stage_overhead(in_beats: int, out_beats: int, family: str) -> BlockCost:
    """The accelerator's per-stage activity counters (compiler/backend/accelerator.py)."""
    return block_cost("activity", {"in_beats": in_beats, "out_beats": out_beats}, family)


def stage_resources(plan: HwPlan, family: str) -> list[StageEstimate]:
    """Each stage's resources (LUT, FF, DSP, BRAM) and steady-state cycles: the estimate
    without the cycle model's run (a search prices thousands of plans this way)."""
    stages = []
    for s in plan.stages:
        costs = [block_cost(spec.kind, spec.params, family) for spec in s.blocks + s.skip]
        costs.append(stage_overhead(s.in_beats, s.out_beats, family))
        figures = Counter()
        for c in costs:
            figures.update(lut=lut_count(c, family), ff=c.ff, dsp=c.dsp, bram=c.bram)
        stages.append(StageEstimate(s.name, s.op, s.cycles, figures["lut"], figures["ff"],
                                    figures["dsp"], figures["bram"],
                                    [spec.kind for spec in s.blocks]))
    return stages


def estimate(design_or_plan: Any, board: str | Board | None = None) -> Estimate:
    """Estimate LUT, FF, DSP, BRAM and cycles of a ``Design`` or ``HwPlan`` on ``board``
    (a name, a YAML path or a :class:`Board`; default ``DEFAULT_BOARD``)."""
    plan: HwPlan = getattr(design_or_plan, "plan", design_or_plan)
    b = load_board(board)
    stages = stage_resources(plan, b.family)
    totals = Counter()
    for st in stages:
        totals.update(lut=st.lut, ff=st.ff, dsp=st.dsp, bram=st.bram)
    # Two inferences back to back: the first's latency and cycles (the second, behind it,
    # never holds it up), and their spacing.
    timing = plan_timing(plan, 2)
    ii = timing.ii_cycles  # steady_ii's figure, from this same run
    capacity = {"lut": b.lut, "ff": b.ff, "dsp": b.dsp, "bram": b.bram}
    utilization = {k: (totals[k] / v if v else float(totals[k] > 0) * float("inf"))
                   for k, v in capacity.items()}
    fits = all(totals[k] <= v for k, v in capacity.items())
    return Estimate(board=b.name, family=b.family, lut=totals["lut"], ff=totals["ff"],
                    dsp=totals["dsp"], bram=totals["bram"], bram_unit=b.bram_unit,
                    cycles=timing.completion_cycles[0], latency_cycles=timing.latency_cycles,
                    ii_cycles=ii,
                    clock_hz=float(b.clock_hz), throughput=b.clock_hz / ii, fits=fits,
                    utilization=utilization, stages=stages, cycles_exact=timing.exact)
