"""Balanced sums of several lanes' terms with a register after every few adder levels.

Each lane's terms are added pairwise level by level, an odd one out waiting a level (the
tree of :func:`qfab.hw.requant.balanced_sum`). After every ``levels_per_stage`` levels, and
after the last, every lane's partial sums go into registers sized by their exact ranges (a
sum of independent terms ranges over the sum of the terms' ranges), so all lanes leave in the
same cycle whatever their number of terms. The same walk over ranges alone gives the
register count and bits without building anything (:func:`sum_stages`,
:func:`register_bits`), for the cycle and cost models.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from amaranth.hdl import Signal
from qfab.hw.multipliers import shape_for_range

Range = tuple[int, int]


def _levels(count: int) -> int:
    return max(count - 1, 0).bit_length()


def sum_stages(term_counts: list[int], levels_per_stage: int) -> int:
    """Registers each lane's sum passes, the last holding the sum: one after every
    ``levels_per_stage`` levels of the deepest lane's tree, at least one."""
    deepest = max((_levels(n) for n in term_counts), default=0)
    return max(-(-deepest // levels_per_stage), 1)


def _pair(values: list) -> list:
    return [values[i] + values[i + 1] for i in range(0, len(values) - 1, 2)] \
        + values[len(values) - len(values) % 2:]


def _walk(lanes: list[list[Range]], levels_per_stage: int) -> list[list[list[Range]]]:
    """Every register stage's ranges, lane by lane."""
    ranges = [list(ts) or [(0, 0)] for ts in lanes]
    stages = []
    for _ in range(sum_stages([len(ts) for ts in lanes], levels_per_stage)):
        for _ in range(levels_per_stage):
            ranges = [[(a[0] + b[0], a[1] + b[1]) for a, b in
                       zip(ts[::2], ts[1::2], strict=False)] + ts[len(ts) - len(ts) % 2:]
                      for ts in ranges]
        stages.append(ranges)
    return stages


def register_bits(lanes: list[list[Range]], levels_per_stage: int) -> int:
    """Bits of the registers before the last stage (the last holds the sums, which a block
    counts as its own)."""
    return sum(shape_for_range(lo, hi).width for stage in _walk(lanes, levels_per_stage)[:-1]
               for ts in stage for lo, hi in ts)


def pipelined_sums(lanes: list[list[tuple[Any, Range]]], levels_per_stage: int,
                   register: Callable[[list, list], list]) -> list:
    """Each lane's terms (value, exact range) summed; ``register(signals, values)`` makes
    the registers of a stage (``signals`` take ``values`` when the pipeline moves) and
    returns them. Returns each lane's registered sum."""
    values = [[v for v, _ in ts] or [0] for ts in lanes]
    for k, stage in enumerate(_walk([[r for _, r in ts] for ts in lanes], levels_per_stage)):
        for _ in range(levels_per_stage):
            values = [_pair(vs) for vs in values]
        signals = [[Signal(shape_for_range(lo, hi), name=f"sum{lane}_r{k}_{j}")
                    for j, (lo, hi) in enumerate(ts)] for lane, ts in enumerate(stage)]
        flat = register([s for ss in signals for s in ss], [v for vs in values for v in vs])
        at = 0
        values = []
        for ss in signals:
            values.append(flat[at:at + len(ss)])
            at += len(ss)
    return [vs[0] for vs in values]
