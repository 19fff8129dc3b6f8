"""FIFO depths sized by the cycle model, so that a fork never waits for a join.

``qfab.compile`` runs it on the balanced plan beside the cycle model (``qfab/flow.py``): the
compiler plans FIFOs one inference deep and takes the depths found here as they are.

A join's FIFOs (``mappings/joins.py``) hold one inference of a branch. Where the branches
are long (a second output taken at the stem and joined after the head), the join takes
inference ``k`` of the side branch only after the main branch has carried it through every
stage, and the fork has sent several more meanwhile: with room for one, the fork waits, and
so does every stage before it (a branching CNN ran at half its slowest stage's pace). As
FINN sizes its FIFOs by simulation, the handshake model runs the design with FIFOs too deep
to fill and each gets the most beats it held (:func:`sized_fifos`).
"""

from __future__ import annotations

import math

import numpy as np
from qfab.compiler.backend.plan import BlockSpec, HwPlan
from qfab.cost_model.events import run_events
from qfab.cost_model.handshake_blocks import _Fifo
from qfab.cost_model.timing import MODEL_CYCLES, _chains, _cycle_cap, plan_timing, serial_cycles

# Inferences run to find the most beats a FIFO holds: enough for the pipeline to fill (its
# latency over its pace), a few more to reach the steady state, at most this many.
MAX_RUNS = 10


def _fifos(plan: HwPlan) -> list[BlockSpec]:
    return [b for s in plan.stages for b in s.blocks + s.skip if b.kind == "fifo"]


def peak_occupancy(transfers_in: list[int], transfers_out: list[int]) -> int:
    """The most beats a queue holds whose beats enter and leave at these cycles."""
    if not transfers_in:
        return 0
    cycles = np.asarray(transfers_in)
    held = (np.arange(1, cycles.size + 1)
            - np.searchsorted(np.asarray(transfers_out), cycles, side="right"))
    return int(held.max())


def sized_fifos(plan: HwPlan) -> HwPlan:
    """``plan`` with every FIFO as deep as the most beats it holds when none can fill (and
    never less deep than it was): a stream of inferences then runs at the pace of the
    slowest stage, not slower because a fork waits for room. Unchanged when the plan has no
    FIFO or already keeps that pace, or the design is too long for the handshake model."""
    fifos = _fifos(plan)
    if not fifos or serial_cycles(plan, 2) > MODEL_CYCLES:
        return plan
    timing = plan_timing(plan, 2)
    if timing.ii_cycles <= plan.ii_cycles:
        return plan
    runs = min(MAX_RUNS, math.ceil(timing.latency_cycles / plan.ii_cycles) + 3)
    if serial_cycles(plan, runs) > MODEL_CYCLES:
        return plan
    # Deep enough for every run's beats, each a depth of its own so the model's FIFOs
    # can be told apart.
    before = [b.params["depth"] for b in fifos]
    deep = runs * max(before) + 8  # a join's FIFO holds an inference already
    for k, b in enumerate(fifos):
        b.params["depth"] = deep + k
    chain, _, skips, _ = _chains(plan.stages)
    trace = run_events(chain, plan.in_beats * runs, plan.out_beats * runs, skips=tuple(skips),
                       max_cycles=_cycle_cap(plan, runs))
    held = [0] * len(fifos)
    places = [(trace.transfers, i, blk) for i, blk in enumerate(chain)]
    places += [(trace.skip_transfers[k], j, blk) for k, s in enumerate(skips)
               for j, blk in enumerate(s.blocks)]
    for streams, i, blk in places:
        if isinstance(blk, _Fifo):
            held[blk.inner_depth + 1 - deep] = peak_occupancy(streams[i], streams[i + 1])
    for b, old, most in zip(fifos, before, held, strict=True):
        b.params["depth"] = max(old, most + 2)
    plan.derived.clear()
    return plan
