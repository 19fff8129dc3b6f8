"""One format per layer and side, and one folding per layer, by a mixed-integer linear
program.

Variables: ``x_o`` for every option o (a format for one layer's weights or activations, or a
folding (PE x SIMD) for one layer), all binary. Each group (layer, side) takes exactly one
option, its baseline (int8, or the default folding) among them:

    sum_{o in (layer, side)} x_o = 1

Each resource r with a budget B_r stays within it, the baseline's figure plus each option's
difference from the baseline:

    base_r + sum_o delta_r[o] x_o + sum_j d_r[j] y_j <= B_r

where ``y_j`` is a joint term (sensitivity.py: a requantizer that is a shift only when three
groups are all fixed point), binary and equal to the AND of its groups' fixed-point options
F_g: y_j <= sum_{o in F_g} x_o for each of its k groups, and y_j >= sum_g sum_{o in F_g} x_o
- (k - 1); d_r[j] is the joint change's cost less the single changes' it is made of.

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


def joint_terms(s: Sensitivities, opts: list[dict]) -> list[dict]:
    """Each joint change of ``s`` whose cost differs from the sum of its single changes':
    ``delta`` (resource -> that difference) and ``members`` (for each of its groups, the
    indices in ``opts`` of the options of its format family)."""
    out = []
    base = s.baseline_cost
    for j in s.joints:
        singles = [next((o for o in opts if (o["layer"], o["side"]) == g
                         and o["spec"] == j["spec"]), None) for g in j["groups"]]
        if None in singles:
            continue
        delta = {r: j["cost"][r] - base[r] - sum(o["cost"][r] - base[r] for o in singles)
                 for r in RESOURCES}
        if any(delta.values()):
            out.append({"delta": delta, "members": [
                {i for i, o in enumerate(opts) if (o["layer"], o["side"]) == g
                 and getattr(o["spec"], "kind", None) == j["kind"]} for g in j["groups"]]})
    return out


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
    joints = joint_terms(s, opts)
    m = len(joints)
    sens = np.array([o["sensitivity"] for o in opts] + [0.0] * m, np.float64)
    luts = np.array([o["cost"]["lut"] for o in opts] + [j["delta"]["lut"] for j in joints],
                    np.float64)
    upper = np.ones(n + m)
    for i, o in enumerate(opts):
        too_slow = (o["side"] == "folding" and max_cycles is not None
                    and o["cycles"] > max_cycles)
        if too_slow or (allowed is not None and not allowed(o)):
            upper[i] = 0
    rows, lo, hi = [], [], []

    def row(x: list[float], y: list[float] | None = None) -> list[float]:
        return list(x) + list(y if y is not None else [0.0] * m)

    for g in sorted({(o["layer"], o["side"]) for o in opts}):
        rows.append(row([1.0 if (o["layer"], o["side"]) == g else 0.0 for o in opts]))
        lo.append(1), hi.append(1)
    base = s.baseline_cost
    for r in RESOURCES:
        if r in budget:
            rows.append(row([o["cost"][r] - base[r] for o in opts],
                            [j["delta"][r] for j in joints]))
            lo.append(-np.inf), hi.append(budget[r] - base[r])
    for k, j in enumerate(joints):  # y_j = AND over its groups of "a fixed-point option"
        unit = [1.0 if i == k else 0.0 for i in range(m)]
        for members in j["members"]:
            rows.append(row([-1.0 if i in members else 0.0 for i in range(n)], unit))
            lo.append(-np.inf), hi.append(0)
        every = set().union(*j["members"])
        rows.append(row([1.0 if i in every else 0.0 for i in range(n)], [-v for v in unit]))
        lo.append(-np.inf), hi.append(len(j["members"]) - 1)
    for answer in exclude:
        rows.append(row([1.0 if i in answer else 0.0 for i in range(n)]))
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
                        integrality=np.ones(n + m), bounds=Bounds(np.zeros(n + m), upper))

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
    predicted = {r: int(base[r] + sum(opts[i]["cost"][r] - base[r] for i in taken)
                        + sum(j["delta"][r] for k, j in enumerate(joints)
                              if res.x[n + k] > 0.5))
                 for r in RESOURCES}
    return Choice(tuple(picked[(i, "weights")]["spec"] for i in layers),
                  tuple(picked[(i, "activations")]["spec"] for i in layers), folding,
                  float(sum(opts[i]["sensitivity"] for i in taken)), predicted,
                  frozenset(taken))
