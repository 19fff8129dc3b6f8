"""One format per layer and side, and one folding, by a mixed-integer linear program.

Variables: ``z_f`` (folding f is used) and ``x_{o,f}`` (option o, a format for one layer's
weights or activations, under folding f), all binary. Each (layer, side) takes exactly one
option under the chosen folding:

    sum_f z_f = 1,    sum_{o in (layer, side)} x_{o,f} = z_f          for every f

Each resource r with a budget B_r stays within it, the baseline's figure plus each option's
difference from the baseline:

    sum_f base_r[f] z_f + sum_{o,f} delta_r[o,f] x_{o,f} <= B_r

An option (or a folding) whose initiation interval exceeds the cycle budget is fixed at 0.
The objective is the summed sensitivity, sum_{o,f} s_o x_{o,f}. scipy.optimize.milp solves it
with HiGHS.
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


@dataclass(frozen=True)
class Choice:
    """The program's answer: a format per layer and side, the folding's index, and what the
    linear model predicts for it (summed sensitivity and resources)."""

    weights: tuple[QuantSpec, ...]
    activations: tuple[QuantSpec, ...]
    folding: int
    predicted_sensitivity: float
    predicted: dict[str, int]


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


def _options(s: Sensitivities) -> list[dict]:
    """Every option, the baseline of each (layer, side) first, with zero sensitivity and
    the baseline's cost."""
    opts = []
    for layer in range(len(s.layers)):
        for side in SIDES:
            opts.append({"layer": layer, "side": side, "spec": BASELINE, "sensitivity": 0.0,
                         "cost": s.baseline_cost})
            opts += [c for c in s.changes if c["layer"] == layer and c["side"] == side]
    return opts


def choose(s: Sensitivities, budget: dict[str, float], max_ii: int | None = None) -> Choice | None:
    """The least summed sensitivity within ``budget`` (resource -> limit) and ``max_ii``
    cycles, or None when no assignment fits."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    opts = _options(s)
    nf, no = len(s.foldings), len(opts)
    n = nf + no * nf

    def xi(o: int, f: int) -> int:  # the column of x_{o,f}
        return nf + o * nf + f

    c = np.zeros(n)
    upper = np.ones(n)
    for f in range(nf):
        if max_ii is not None and s.baseline_cost[f]["ii_cycles"] > max_ii:
            upper[f] = 0
        for o, opt in enumerate(opts):
            c[xi(o, f)] = opt["sensitivity"]
            if max_ii is not None and opt["cost"][f]["ii_cycles"] > max_ii:
                upper[xi(o, f)] = 0
    rows, lo, hi = [], [], []
    one = np.zeros(n)
    one[:nf] = 1
    rows.append(one), lo.append(1), hi.append(1)
    groups = sorted({(o["layer"], o["side"]) for o in opts})
    for f in range(nf):
        for g in groups:
            row = np.zeros(n)
            row[f] = -1
            for o, opt in enumerate(opts):
                if (opt["layer"], opt["side"]) == g:
                    row[xi(o, f)] = 1
            rows.append(row), lo.append(0), hi.append(0)
    for r in RESOURCES:
        if r not in budget:
            continue
        row = np.zeros(n)
        for f in range(nf):
            row[f] = s.baseline_cost[f][r]
            for o, opt in enumerate(opts):
                row[xi(o, f)] = opt["cost"][f][r] - s.baseline_cost[f][r]
        rows.append(row), lo.append(-np.inf), hi.append(budget[r])
    with _quiet_stdout():
        res = milp(c, constraints=LinearConstraint(np.array(rows), lo, hi),
                   integrality=np.ones(n), bounds=Bounds(np.zeros(n), upper))
    if res.x is None:
        return None
    x = np.round(res.x).astype(int)
    f = int(np.argmax(x[:nf]))
    picked = [opts[o] for o in range(no) if x[xi(o, f)]]
    specs = {(p["layer"], p["side"]): p["spec"] for p in picked}
    n_layers = len(s.layers)
    predicted = {r: int(s.baseline_cost[f][r] + sum(p["cost"][f][r] - s.baseline_cost[f][r]
                                                    for p in picked)) for r in RESOURCES}
    return Choice(tuple(specs[(i, "weights")] for i in range(n_layers)),
                  tuple(specs[(i, "activations")] for i in range(n_layers)), f,
                  float(sum(p["sensitivity"] for p in picked)), predicted)
