"""`qfab search`: a mixed-precision design under a hardware budget.

1. Measure every layer's sensitivity and cost for each candidate format, weights and
   activations separately (sensitivity.py).
2. Choose one format per layer and side, and a folding, by an integer linear program
   (milp.py).
3. Build the choice and check it against the budget with the cost model itself (not the
   linear sum); when it is over, tighten that resource's budget by the overshoot and solve
   again. Score it on the test split with the integer reference.
4. Score the uniform-precision designs the same way, and search again at each one's LUT
   figure, for the plot of the chosen point against the uniform sweep.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from qfab.cost_model.datasets import Dataset, score
from qfab.cost_model.milp import Choice, choose
from qfab.cost_model.quantize import QuantSpec
from qfab.cost_model.sensitivity import (
    RESOURCES,
    Built,
    Design,
    Sensitivities,
    build,
    mac_layers,
    measure,
    reference_output,
)

from qfab.errors import QfabError

DEFAULT_FOLDING = {"max_pe": 4, "max_simd": 8}
MAX_ROUNDS = 8  # re-solves with a tightened budget before giving up on a budget


@dataclass
class Scored:
    """A built design, its folding's figures and its test score."""

    design: Design
    folding: dict[str, float]
    built: Built
    cost: dict[str, Any]
    score: float

    def row(self, kind: str) -> dict[str, Any]:
        return {"kind": kind, "label": self.design.label(),
                "weights": [s.label for s in self.design.weights],
                "activations": [s.label for s in self.design.activations],
                "folding": self.folding, "score": self.score,
                **{k: self.cost[k] for k in (*RESOURCES, "ii_cycles")}}


class Search:
    """The state one search shares between its steps: model, data, board and foldings."""

    def __init__(self, float_model: onnx.ModelProto, data: Dataset, board,
                 target_fps: float | None = None):
        from qfab.cost_model.sweep import float_outputs

        self.float_model = float_model
        self.layers = mac_layers(float_model)
        self.data = data
        self.board = board
        self.max_ii = None if target_fps is None else max(int(board.clock_hz // target_fps), 1)
        # With a frame rate, the planner's fewest multipliers meeting it, or the default
        # folding when that is fast enough too; the program picks the cheaper.
        self.foldings = ([{"target_fps": target_fps}, DEFAULT_FOLDING] if target_fps
                         else [DEFAULT_FOLDING])
        self.float_test = (float_outputs(float_model, data.x_test)
                           if data.metric == "snr_db" and data.y_test is None else None)

    def sensitivities(self, candidates: list[QuantSpec] | None = None) -> Sensitivities:
        return measure(self.float_model, self.data.x_calibration, self.foldings, self.board,
                       candidates)

    def score(self, design: Design, folding: int) -> Scored:
        """Build ``design`` under ``foldings[folding]`` and score it on the test split."""
        fold = self.foldings[folding]
        b = build(self.float_model, design, self.data.x_calibration, [fold], self.board)
        out = reference_output(b.graph, self.data.x_test)
        return Scored(design, fold, b, b.cost[0], score(self.data, out, self.float_test))

    def fits(self, cost: dict[str, Any], budget: dict[str, float]) -> bool:
        return (all(cost[r] <= budget[r] for r in budget)
                and (self.max_ii is None or cost["ii_cycles"] <= self.max_ii))

    def pick(self, s: Sensitivities, budget: dict[str, float]) -> tuple[Choice, Scored] | None:
        """The program's choice within ``budget``, built and within it by the cost model, or
        None. Each round that overshoots lowers the overshot budget by the overshoot."""
        target = dict(budget)
        for _ in range(MAX_ROUNDS):
            choice = choose(s, target, self.max_ii)
            if choice is None:
                return None
            got = self.score(Design(choice.weights, choice.activations), choice.folding)
            if self.fits(got.cost, budget):
                return choice, got
            for r in budget:
                over = got.cost[r] - budget[r]
                if over > 0:
                    target[r] = target[r] - over - 1
        return None

    def uniform(self, specs: list[tuple[QuantSpec, QuantSpec]]) -> list[Scored]:
        """Every uniform design (weights, activations) under every folding that lowers and
        meets the cycle budget."""
        n = len(self.layers)
        out = []
        for w, a in specs:
            for f in range(len(self.foldings)):
                try:
                    got = self.score(Design((w,) * n, (a,) * n), f)
                except (QfabError, ValueError):
                    continue
                if self.max_ii is None or got.cost["ii_cycles"] <= self.max_ii:
                    out.append(got)
        return out


def uniform_specs() -> list[tuple[QuantSpec, QuantSpec]]:
    """The uniform sweep's formats: integers and fixed point on both sides, minifloat
    weights with integer activations as wide, and minifloats on both sides."""
    specs = [(QuantSpec("int", b),) * 2 for b in range(2, 9)]
    specs += [(QuantSpec("fixed", b),) * 2 for b in (4, 6, 8)]
    for m in ("E2M1", "E3M2", "E4M3"):
        w = QuantSpec("minifloat", minifloat=m)
        specs += [(w, QuantSpec("int", w.width)), (w, w)]
    return specs


def run_search(float_model: onnx.ModelProto, data: Dataset, board, budget: dict[str, float],
               out_dir: Path, target_fps: float | None = None,
               candidates: list[QuantSpec] | None = None,
               uniform: list[tuple[QuantSpec, QuantSpec]] | None = None) -> dict[str, Any]:
    """Search, verify, compare with the uniform designs, and write ``out_dir``: model.onnx,
    estimate.json, search.json, sensitivity.csv and pareto.png. Returns search.json's
    content."""
    start = time.time()
    search = Search(float_model, data, board, target_fps)
    sens = search.sensitivities(candidates)
    measured = time.time()
    picked = search.pick(sens, budget)
    if picked is None:
        base = sens.baseline_cost[0]
        raise QfabError(f"no design fits the budget {_budget_text(budget)}"
                        + (f" at {search.max_ii} cycles an inference" if search.max_ii else "")
                        + f" (the int8 design needs lut={base['lut']}, dsp={base['dsp']}, "
                        f"bram={base['bram']})")
    choice, got = picked
    uniform_rows = search.uniform(uniform if uniform is not None else uniform_specs())
    front: list[dict[str, Any]] = []
    for lut in sorted({u.cost["lut"] for u in uniform_rows}):
        at = search.pick(sens, {**budget, "lut": lut})
        if at is None or (front and front[-1]["label"] == at[1].design.label()):
            continue
        front.append(at[1].row("searched") | {"lut_budget": lut})
        if at[0].predicted_sensitivity == 0:
            break  # a larger budget buys nothing more
    result = {
        "model": float_model.graph.name, "board": board.name, "metric": data.metric,
        "budget": budget, "max_ii_cycles": search.max_ii,
        "layers": sens.layers,
        "chosen": got.row("chosen") | {
            "predicted": choice.predicted,
            "predicted_sensitivity": choice.predicted_sensitivity,
            "accuracy_by": "qfab.reference"},
        "baseline_int8": {"noise": sens.baseline_noise, **sens.baseline_cost[0]},
        "uniform": [u.row("uniform") for u in uniform_rows],
        "searched": front,
        "unavailable": sens.unavailable,
        "seconds": {"sensitivity": round(measured - start, 1),
                    "total": round(time.time() - start, 1)},
    }
    write_outputs(out_dir, got, sens, result)
    return result


def _budget_text(budget: dict[str, float]) -> str:
    return ",".join(f"{k}={v:g}" for k, v in budget.items())


def write_outputs(out_dir: Path, got: Scored, sens: Sensitivities, result: dict) -> None:
    """Every file into a temporary folder that replaces ``out_dir`` once all are written."""
    import csv

    from qfab.cost_model.plots import search_plot

    from qfab.output_files import output_folder

    with output_folder(out_dir) as tmp:
        onnx.save(got.built.model, tmp / "model.onnx")
        est = got.cost["estimate"].as_dict()
        (tmp / "estimate.json").write_text(json.dumps(est, indent=1, default=_plain) + "\n")
        (tmp / "search.json").write_text(json.dumps(result, indent=1, default=_plain) + "\n")
        rows = sens.table()
        with (tmp / "sensitivity.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["layer"])
            w.writeheader()
            w.writerows(rows)
        search_plot(result, tmp / "pareto.png")


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return str(v)
