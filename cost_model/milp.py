"""One format per layer and side, and one folding per layer, by a mixed-integer linear
program.

Variables: ``x_o`` for every option o (a format for one layer's weights or activations, or a
folding (PE x SIMD) for one layer), all binary. Each group (layer, side) takes exactly one
option, its baseline (int8, or the default folding) among them:

    sum_{o in (layer, side)} x_o = 1

Each resource r with a budget B_r stays within it, the baseline's figure plus each option's
difference from the baseline:

    base_r + sum_o delta_r[o] x_o <= B_r

A folding whose stage takes more than the cycle limit is fixed at 0. The objective is the
summed sensitivity, sum_o s_o x_o, and among answers of the least, the fewest LUTs (a second
solve with sum_o s_o x_o held at the optimum: many changes measure no noise above int8's, and
the first solve would take any of them). Or it is the LUTs, under a bound on the summed
sensitivity (sum_o s_o x_o <= S: the fewest LUTs at a given noise), or to fold given formats.
Earlier answers can
be excluded (a "no-good" cut, sum_{o in answer} x_o <= |answer| - 1), so that repeated
solves list the best few assignments. scipy.optimize.milp solves it with HiGHS.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from qfab.cost_model.quantize import QuantSpec
from qfab.cost_model.sensitivity import BASELINE, RESOURCES, SIDES, Sensitivities

GROUP_SIDES = (*SIDES, "folding")


@dataclass(frozen=True)
class Choice:
    """The program's answer: a format per layer and side, a folding per layer (None: the
    default), what the linear model predicts for it (summed sensitivity and resources), and
    the options it took (to exclude it from a later solve)."""

    weights: tuple[QuantSpec, ...]
    activations: tuple[QuantSpec, ...]
    folding: tuple[tuple[int, int] | None, ...]
    predicted_sensitivity: float
    predicted: dict[str, int]
    options: frozenset[int]


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """HiGHS prints some solver notes from C on stdout, which carries a command's results."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def options(s: Sensitivities) -> list[dict]:
    """Every option, the baseline of each (layer, side) first, with zero sensitivity and
    the baseline's cost (a folding group only for a layer with foldings to offer)."""
    opts = []
    for layer in range(len(s.layers)):
        for side in GROUP_SIDES:
            changes = [c for c in s.changes if c["layer"] == layer and c["side"] == side]
            if side == "folding" and not changes:
                continue
            opts.append({"layer": layer, "side": side,
                         "spec": None if side == "folding" else BASELINE,
                         "sensitivity": 0.0, "cost": s.baseline_cost,
                         "cycles": s.baseline_cycles.get(layer, 0)})
            opts += changes
    return opts


def choose(s: Sensitivities, budget: dict[str, float], max_cycles: int | None = None,
           exclude: list[frozenset[int]] = (), allowed=None,
           minimise: str = "sensitivity",
           max_sensitivity: float | None = None) -> Choice | None:
    """The least summed sensitivity within ``budget`` (resource -> limit), no layer's stage
    over ``max_cycles``, other than the answers in ``exclude``, the fewest LUTs among equals;
    or None when nothing fits. ``allowed(option)`` may rule options out; ``minimise="lut"``
    minimises LUTs instead, with the summed sensitivity at most ``max_sensitivity``."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    opts = options(s)
    n = len(opts)
    sens = np.array([o["sensitivity"] for o in opts], np.float64)
    luts = np.array([o["cost"]["lut"] for o in opts], np.float64)
    upper = np.ones(n)
    for i, o in enumerate(opts):
        too_slow = (o["side"] == "folding" and max_cycles is not None
                    and o["cycles"] > max_cycles)
        if too_slow or (allowed is not None and not allowed(o)):
            upper[i] = 0
    rows, lo, hi = [], [], []
    for g in sorted({(o["layer"], o["side"]) for o in opts}):
        rows.append([1.0 if (o["layer"], o["side"]) == g else 0.0 for o in opts])
        lo.append(1), hi.append(1)
    base = s.baseline_cost
    for r in RESOURCES:
        if r in budget:
            rows.append([o["cost"][r] - base[r] for o in opts])
            lo.append(-np.inf), hi.append(budget[r] - base[r])
    for answer in exclude:
        rows.append([1.0 if i in answer else 0.0 for i in range(n)])
        lo.append(-np.inf), hi.append(len(answer) - 1)
    # Rows of sensitivities scaled so that the least above zero is 1 (HiGHS holds a row to
    # 1e-7 absolute, the size of the smallest sensitivities themselves).
    scale = 1 / min((v for v in sens if v > 0), default=1.0)
    if max_sensitivity is not None:
        rows.append(list(sens * scale))
        lo.append(-np.inf), hi.append(max_sensitivity * scale)

    def solve(c: np.ndarray):
        with _quiet_stdout():
            return milp(c, constraints=LinearConstraint(np.array(rows), lo, hi),
                        integrality=np.ones(n), bounds=Bounds(np.zeros(n), upper))

    res = solve(luts if minimise == "lut" else sens * scale)
    if res.x is None:
        return None
    if minimise == "sensitivity":  # the fewest LUTs of the least sensitivity
        least = float(sens @ np.round(res.x)) * scale
        rows.append(list(sens * scale))
        lo.append(-np.inf), hi.append(least * (1 + 1e-9) + 1e-9)
        again = solve(luts)
        if again.x is not None:
            res = again
    taken = [i for i in range(n) if res.x[i] > 0.5]
    picked = {(opts[i]["layer"], opts[i]["side"]): opts[i] for i in taken}
    layers = range(len(s.layers))
    folding = tuple(picked[(i, "folding")]["spec"] if (i, "folding") in picked else None
                    for i in layers)
    predicted = {r: int(base[r] + sum(opts[i]["cost"][r] - base[r] for i in taken))
                 for r in RESOURCES}
    return Choice(tuple(picked[(i, "weights")]["spec"] for i in layers),
                  tuple(picked[(i, "activations")]["spec"] for i in layers), folding,
                  float(sum(opts[i]["sensitivity"] for i in taken)), predicted,
                  frozenset(taken))
