"""`qfab search`: a mixed-precision design under a hardware budget.

1. Measure every layer's sensitivity and cost for each candidate format, weights and
   activations separately, and the cost of each layer's foldings (sensitivity.py).
2. Choose one format per layer and side, and one folding per layer, by an integer linear
   program (milp.py), within the budget and the cycle budget (``--target-fps``, else the
   initiation interval of the default design).
3. Build the program's best few answers (a "no-good" cut excludes each answer from the next
   solve) and check each against the budget with the cost model itself, not the linear
   sum; an answer over budget tightens that resource by the linear model's error on it. Of
   those within it, keep the one whose measured output noise on the calibration data is
   least (the test split is not looked at), and score it on the test split with the
   integer reference.
4. Score the uniform-precision designs (the default folding, as a sweep builds them), fold
   the best one's formats by the program (fewest LUTs at its II and DSPs), and search again
   at the LUTs, DSPs and II of each uniform design on the score-against-LUT front and at 80%
   of the best one's LUTs, for the plot and the comparison.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from qfab.cost_model.correction import Correction
from qfab.cost_model.datasets import Dataset, score
from qfab.cost_model.estimate import estimate
from qfab.cost_model.milp import Choice, choose
from qfab.cost_model.quantize import QuantSpec
from qfab.cost_model.sensitivity import (
    BASELINE,
    DEFAULT_FOLDING,
    JOINT_SPEC,
    RESOURCES,
    Built,
    Design,
    Sensitivities,
    build,
    mac_layers,
    measure,
    option_label,
    planned,
    reference_output,
    relative_noise,
)

from qfab.errors import QfabError

MAX_SOLVES = 16  # answers of the program built for one budget, at most
NOISE_STEPS = 10  # answers built while bisecting the summed-sensitivity bound (at_noise)
NOISE_RESOLUTION = 0.05  # the bisection stops when the bound is known to 5%
ANSWERS = 4  # answers within the budget compared by measured noise
FRONT_FRACTIONS = (0.8,)  # of the best uniform design's LUTs, searched too
YOSYS_KEYS = ("yosys_lut", "yosys_dsp", "yosys_bram")
YOSYS_ANSWERS = 2  # answers within a budget in Yosys's LUTs compared (each synthesized)
YOSYS_FRACTION = 0.8  # of the best uniform design's Yosys LUTs, searched within with --synth
LEARN_FOLDINGS = 3  # folding options a layer that --synth learns from (the fewest multipliers)


@dataclass
class Scored:
    """A built design, its output noise on the calibration data and its test score (None
    until scored)."""

    design: Design
    built: Built
    noise: float
    score: float | None = None
    right: np.ndarray | None = None  # each test sample classified right (top-1 only)

    @property
    def cost(self) -> dict[str, Any]:
        return self.built.cost

    def row(self, kind: str, layers: list[str]) -> dict[str, Any]:
        return {"kind": kind, "label": self.design.label(),
                "weights": [s.label for s in self.design.weights],
                "activations": [s.label for s in self.design.activations],
                "folding": {name: option_label(f)
                            for name, f in zip(layers, self.design.folding, strict=True)},
                "noise": self.noise, "score": self.score,
                **{k: self.cost[k] for k in (*RESOURCES, "ii_cycles")},
                **{k: self.cost[k] for k in ("lut_model", *YOSYS_KEYS) if k in self.cost}}


class Search:
    """The state one search shares between its steps: model, data, board, cycle budget."""

    def __init__(self, float_model: onnx.ModelProto, data: Dataset, board,
                 target_fps: float | None = None, ptq: str = "gptq"):
        from qfab.cost_model.sweep import float_outputs

        self.ptq = ptq  # the post-training quantizer (quantize.PTQ_METHODS)
        self.float_model = float_model
        self.layers = mac_layers(float_model)
        self.data = data
        self.board = board
        self.max_ii = None if target_fps is None else max(int(board.clock_hz // target_fps), 1)
        self.float_calibration = float_outputs(float_model, data.x_calibration)
        self.float_test = (float_outputs(float_model, data.x_test)
                           if data.metric == "snr_db" and data.y_test is None else None)
        self.built: dict[Design, Scored] = {}  # the searches at several budgets meet again
        self.correction: Correction | None = None  # learned from Yosys (--synth)
        self.yosys_seconds = 0.0

    def sensitivities(self, candidates: list[QuantSpec] | None = None) -> Sensitivities:
        s = measure(self.float_model, self.data.x_calibration, self.board, candidates,
                    self.max_ii, self.ptq)
        if self.max_ii is None:  # no slower than the default design
            self.max_ii = s.baseline_cost["ii_cycles"]
        return s

    def evaluate(self, design: Design, timing: bool = True) -> Scored:
        """Build ``design`` and measure its output noise on the calibration data (once a
        design); its II too unless ``timing`` is False (the cycle model takes longer than
        the rest)."""
        if design not in self.built:
            b = build(self.float_model, design, self.data.x_calibration, self.board,
                      self.layers, timing=False, ptq=self.ptq)
            noise = relative_noise(reference_output(b.graph, self.data.x_calibration),
                                   np.asarray(self.float_calibration, np.float64))
            self.built[design] = Scored(design, b, noise)
        got = self.built[design]
        if self.correction is not None and "lut_model" not in got.cost:
            got.cost.update(lut_model=got.cost["lut"],
                            lut=self.correction.lut(got.cost["stages"]))
        if timing and "estimate" not in got.cost:
            est = estimate(got.built.plan, self.board)
            got.cost.update(ii_cycles=est.ii_cycles, estimate=est)
        return got

    def scored(self, got: Scored) -> Scored:
        """``got`` with its score on the test split."""
        if got.score is None:
            out = reference_output(got.built.graph, self.data.x_test)
            got.score = score(self.data, out, self.float_test)
            if self.data.metric == "top1":
                got.right = out.reshape(len(out), -1).argmax(-1) == self.data.y_test
        return got

    def yosys(self, got: Scored) -> dict[str, int]:
        """Yosys's figures for ``got``'s accelerator: the Verilog ``qfab compile`` writes
        for it, synthesized as ``qfab synth`` does (cached by the Verilog)."""
        if "yosys_lut" not in got.cost:
            from qfab.compiler.backend.design import TOP_NAME
            from qfab.cost_model.yosys import synthesize

            start = time.time()
            r = synthesize(verilog(got.built.plan), self.board.family, top=TOP_NAME)
            got.cost.update(yosys_lut=r.lut, yosys_dsp=r.dsp, yosys_bram=r.bram)
            self.yosys_seconds += time.time() - start
        return {k: got.cost[f"yosys_{k}"] for k in RESOURCES}

    def learn(self, s: Sensitivities) -> None:
        """Learn the cost model's per-stage error from Yosys (hierarchy kept) on the default
        design, on designs with each MAC layer at one of its first ``LEARN_FOLDINGS``
        folding options and on the fixed8 design (when fixed8 is a candidate), and price
        every option and design by the corrected figures from here on."""
        from qfab.cost_model.correction import learn

        start = time.time()
        n = len(self.layers)
        base = self.evaluate(Design((BASELINE,) * n, (BASELINE,) * n, (None,) * n),
                             timing=False)
        options: dict[int, list] = {}
        for c in s.changes:  # the foldings the program may take (within the II)
            if c["side"] == "folding" and c["cost"]["ii_cycles"] <= self.max_ii:
                options.setdefault(c["layer"], []).append(c["spec"])
        designs = [(base.built.plan, verilog(base.built.plan))]
        for k in range(min(max((len(o) for o in options.values()), default=0),
                           LEARN_FOLDINGS)):
            folding = tuple(options[i][k] if k < len(options.get(i, ())) else None
                            for i in range(n))
            plan, _ = planned(base.built.graph, Design(base.design.weights,
                                                       base.design.activations, folding),
                              self.board, self.layers, timing=False)
            designs.append((plan, verilog(plan)))
        # and the fixed-point design at the default folding: its requantizers are shifts,
        # so stages whose products leave the DSPs are measured too (the model's own figure
        # stands for such a stage otherwise, 18% over Yosys on the residual CNN's fixed8)
        if any(c["spec"] == JOINT_SPEC for c in s.changes):
            fixed = (JOINT_SPEC,) * n
            try:
                got = self.evaluate(Design(fixed, fixed, (None,) * n), timing=False)
                designs.append((got.built.plan, verilog(got.built.plan)))
            except (QfabError, ValueError):
                pass
        self.correction = learn(designs, self.board.family)
        # The hierarchy's glue set so that the default design comes out as Yosys
        # flattened it (as qfab synth does): the flat netlist differs by a few percent.
        flat = self.yosys(base)["lut"]
        self.correction.glue += flat - self.correction.lut(base.cost["stages"])
        for o in [*s.changes, *s.joints, {"cost": s.baseline_cost}]:
            o["cost"]["lut_model"] = o["cost"]["lut"]
            o["cost"]["lut"] = self.correction.lut(o["cost"]["stages"])
        for got in self.built.values():  # priced before the correction
            got.cost.update(lut_model=got.cost["lut"],
                            lut=self.correction.lut(got.cost["stages"]))
        self.yosys_seconds = time.time() - start

    def pick(self, s: Sensitivities, budget: dict[str, float], max_ii: int,
             allowed=None, minimise: str = "sensitivity",
             yosys: bool = False) -> tuple[Choice, Scored] | None:
        """Of the program's best answers within ``budget`` and ``max_ii`` cycles, built and
        within them by the cost model (with ``yosys``, the LUTs by Yosys), the least noisy
        (or with ``minimise="lut"``, the fewest LUTs), scored on the test split; None when
        none fits."""
        target, cycles = dict(budget), max_ii
        tried: list[frozenset[int]] = []
        within: list[tuple[Choice, Scored]] = []
        gate = [r for r in budget if not (yosys and r == "lut")]
        for _ in range(MAX_SOLVES):
            choice = choose(s, target, cycles, tried, allowed, minimise)
            if choice is None:
                break
            tried.append(choice.options)
            design = Design(choice.weights, choice.activations, choice.folding)
            try:
                got = self.evaluate(design, timing=False)
            except (QfabError, ValueError):
                continue
            cost = got.cost
            if all(cost[r] <= budget[r] for r in gate):  # then the II, then Yosys
                cost = self.evaluate(design).cost
                if yosys and cost["ii_cycles"] <= max_ii:
                    cost = {**cost, "lut": self.yosys(got)["lut"]}
            if all(cost[r] <= budget[r] for r in budget) and cost["ii_cycles"] <= max_ii:
                within.append((choice, got))
                if len(within) == (YOSYS_ANSWERS if yosys else ANSWERS):
                    break
                continue
            # Over budget: the linear model erred by (built - predicted); ask it for that
            # much less, and always less than before.
            for r in budget:
                if cost[r] > budget[r]:
                    error = max(cost[r] - choice.predicted[r], 0)
                    target[r] = min(target[r], budget[r] - error) - 1
            if cost.get("ii_cycles", 0) > max_ii:
                cycles = min(cycles, max_ii - (cost["ii_cycles"] - max_ii)) - 1
        if not within:
            return None
        key = ((lambda cg: cg[1].noise) if minimise == "sensitivity"
               else (lambda cg: (cg[1].cost["lut"], cg[1].noise)))
        choice, got = min(within, key=key)
        return choice, self.scored(got)

    def at_noise(self, s: Sensitivities, budget: dict[str, float], max_ii: int,
                 noise: float) -> Scored | None:
        """The fewest LUTs within ``budget`` and ``max_ii`` cycles whose output noise on the
        calibration data, measured on the built design, is at most ``noise``, scored; None
        when none is found. The program minimises LUTs with the summed sensitivity at most
        a bound, which is searched by bisection: the sum misjudges the noise of several
        changes together both ways, so the bound that the measured noise allows is found by
        building each answer."""
        target, cycles = dict(budget), max_ii
        quiet: list[Scored] = []
        bound, low, high = max(noise - s.baseline_noise, 0.0), 0.0, None
        smallest = min((c["sensitivity"] for c in s.changes if c["sensitivity"] > 0),
                       default=0.0)
        for _ in range(NOISE_STEPS):
            choice = choose(s, target, cycles, minimise="lut", max_sensitivity=bound)
            if choice is None:
                break
            design = Design(choice.weights, choice.activations, choice.folding)
            try:
                got = self.evaluate(design, timing=False)
            except (QfabError, ValueError):
                got = None
            if got is not None and got.noise <= noise:
                cost = self.evaluate(design).cost
                over = [r for r in budget if cost[r] > budget[r]]
                if over or cost["ii_cycles"] > max_ii:  # the same bound, asking for less
                    for r in over:
                        target[r] = min(target[r], budget[r]
                                        - max(cost[r] - choice.predicted[r], 0)) - 1
                    if cost["ii_cycles"] > max_ii:
                        cycles = min(cycles, 2 * max_ii - cost["ii_cycles"]) - 1
                    continue
                quiet.append(got)
                low = bound
            else:
                high = bound
            if high is None:
                bound = max(2 * bound, smallest)
            elif high - low <= NOISE_RESOLUTION * high:
                break
            else:
                bound = (low + high) / 2
        if not quiet:
            return None
        return self.scored(min(quiet, key=lambda g: (g.cost["lut"], g.noise)))

    def uniform(self, specs: list[tuple[QuantSpec, QuantSpec]]) -> list[Scored]:
        """Every uniform design (weights, activations) at the default folding that lowers
        and meets the cycle budget, scored."""
        n = len(self.layers)
        out = []
        for w, a in specs:
            try:
                got = self.evaluate(Design((w,) * n, (a,) * n, (None,) * n))
            except (QfabError, ValueError):
                continue
            if got.cost["ii_cycles"] <= self.max_ii:
                out.append(self.scored(got))
        return out

    def folded(self, s: Sensitivities, u: Scored) -> Scored | None:
        """The uniform design ``u``'s formats with the program's folding: the fewest LUTs
        within its DSPs, BRAMs and II."""
        specs = {"weights": u.design.weights[0], "activations": u.design.activations[0]}

        def same_formats(o: dict) -> bool:
            return o["side"] == "folding" or o["spec"] == specs[o["side"]]

        budget = {r: u.cost[r] for r in ("dsp", "bram")}
        at = self.pick(s, budget, u.cost["ii_cycles"], same_formats, "lut")
        return None if at is None else at[1]


def verilog(plan) -> str:
    """The accelerator's Verilog for ``plan``, as ``qfab compile`` writes it."""
    from qfab.compiler.backend.accelerator import Accelerator
    from qfab.compiler.backend.design import TOP_NAME
    from qfab.hw._verilog import convert

    return convert(Accelerator(plan), name=TOP_NAME, emit_src=False)


def uniform_specs() -> list[tuple[QuantSpec, QuantSpec]]:
    """The uniform sweep's formats: integers and fixed point on both sides, minifloat
    weights with integer activations as wide, and minifloats on both sides."""
    specs = [(QuantSpec("int", b),) * 2 for b in range(2, 9)]
    specs += [(QuantSpec("fixed", b),) * 2 for b in (4, 6, 8)]
    for m in ("E2M1", "E3M2", "E4M3"):
        w = QuantSpec("minifloat", minifloat=m)
        specs += [(w, QuantSpec("int", w.width)), (w, w)]
    return specs


def score_front(rows: list[Scored]) -> list[Scored]:
    """The designs no other beats on both score and LUTs, fewest LUTs first."""
    out: list[Scored] = []
    for r in sorted(rows, key=lambda r: (r.cost["lut"], -r.score)):
        if not out or r.score > out[-1].score:
            out.append(r)
    return out


def run_search(float_model: onnx.ModelProto, data: Dataset, board, budget: dict[str, float],
               out_dir: Path, target_fps: float | None = None,
               candidates: list[QuantSpec] | None = None,
               uniform: list[tuple[QuantSpec, QuantSpec]] | None = None,
               synth: bool = False, ptq: str = "gptq") -> dict[str, Any]:
    """Search, verify, compare with the uniform designs, and write ``out_dir``: model.onnx,
    estimate.json, search.json, sensitivity.csv and pareto.png; with ``synth``, Yosys
    measures the chosen design, the best uniform one and the searched designs scoring as
    well. Returns search.json's content."""
    from qfab.cost_model.search_report import compare, compare_yosys, versus, write_outputs

    start, cpu = time.time(), time.process_time()
    search = Search(float_model, data, board, target_fps, ptq)
    sens = search.sensitivities(candidates)
    measured = time.time()
    if synth:  # the cost model corrected by Yosys from here on
        search.learn(sens)
    learning = search.yosys_seconds
    picked = search.pick(sens, budget, search.max_ii)
    if picked is None:
        base = sens.baseline_cost
        raise QfabError(f"no design fits the budget {_budget_text(budget)}"
                        f" at {search.max_ii} cycles an inference"
                        f" (the int8 design needs lut={base['lut']}, dsp={base['dsp']}, "
                        f"bram={base['bram']})")
    choice, got = picked
    layers = search.layers
    uniform_rows = search.uniform(uniform if uniform is not None else uniform_specs())
    best = max(uniform_rows, key=lambda u: (u.score, -u.cost["lut"]), default=None)
    front: list[dict[str, Any]] = []
    front_designs: list[Scored] = []
    comparison: dict[str, Any] = {}
    if best is not None:
        budgets = [(u.cost["lut"], u) for u in score_front(uniform_rows)]
        budgets += [(int(best.cost["lut"] * f), best) for f in FRONT_FRACTIONS]
        for lut, u in sorted(budgets, key=lambda b: b[0]):
            limits = {**budget, "lut": lut, "dsp": min(budget.get("dsp", u.cost["dsp"]),
                                                       u.cost["dsp"])}
            at = search.pick(sens, limits, u.cost["ii_cycles"])
            if at is not None:
                front.append({"lut_budget": lut, "dsp_budget": limits["dsp"],
                              "ii_budget": u.cost["ii_cycles"]})
                front_designs.append(at[1])
        # The fewest LUTs at the best uniform design's noise on the calibration data.
        limits = {**budget, "lut": best.cost["lut"],
                  "dsp": min(budget.get("dsp", best.cost["dsp"]), best.cost["dsp"])}
        at = search.at_noise(sens, limits, best.cost["ii_cycles"], best.noise)
        # (or a design searched at a LUT budget, when it is as quiet and cheaper)
        quiet = [f for f in front_designs
                 if f.noise <= best.noise and f.cost["dsp"] <= limits["dsp"]
                 and f.cost["ii_cycles"] <= best.cost["ii_cycles"]]
        quiet += [] if at is None else [at]
        if quiet:
            front.append({"lut_budget": limits["lut"], "dsp_budget": limits["dsp"],
                          "ii_budget": best.cost["ii_cycles"], "noise_budget": best.noise})
            front_designs.append(min(quiet, key=lambda f: (f.cost["lut"], f.noise)))
        folded = search.folded(sens, best)
        searched, searched_cpu = time.time(), time.process_time()
        if synth:
            for design in [got, best, *(f for f, b in zip(front_designs, front, strict=True)
                                        if f.score >= best.score or "noise_budget" in b)]:
                search.yosys(design)
        front = [f.row("searched", layers) | b | versus(f, best)
                 for f, b in zip(front_designs, front, strict=True)]
        comparison = compare(best, folded, front, layers)
        if synth:
            lut = int(best.cost["yosys_lut"] * YOSYS_FRACTION)
            limits = {**budget, "lut": lut, "dsp": min(budget.get("dsp", best.cost["dsp"]),
                                                       best.cost["dsp"])}
            at = search.pick(sens, limits, best.cost["ii_cycles"], yosys=True)
            within = None if at is None else at[1].row("searched", layers) | {
                "lut_budget": lut, "dsp_budget": limits["dsp"],
                "ii_budget": best.cost["ii_cycles"]} | versus(at[1], best)
            comparison["yosys"] = compare_yosys(best, front, within)
    else:
        searched, searched_cpu = time.time(), time.process_time()
        if synth:
            search.yosys(got)
    result = {
        "model": float_model.graph.name, "board": board.name, "metric": data.metric, "ptq": ptq,
        "test_samples": len(data.x_test), "budget": budget, "max_ii_cycles": search.max_ii,
        "layers": sens.layers,
        "chosen": got.row("chosen", layers) | {
            "compile": compile_command(out_dir, got.design, layers, board.name),
            "predicted": choice.predicted,
            "predicted_sensitivity": choice.predicted_sensitivity,
            "accuracy_by": "qfab.reference"},
        "baseline_int8": {"noise": sens.baseline_noise,
                          **{k: v for k, v in sens.baseline_cost.items() if k != "stages"}},
        **({"correction": search.correction.as_dict()} if search.correction else {}),
        "uniform": [u.row("uniform", layers) for u in uniform_rows],
        "searched": front,
        "comparison": comparison,
        "unavailable": sens.unavailable,
        "seconds": {"sensitivity": round(measured - start, 1),
                    "search": round(searched - start - learning, 1),
                    "search_cpu": round(searched_cpu - cpu, 1),
                    **({"yosys": round(time.time() - searched + learning, 1)}
                       if synth else {}),
                    "total": round(time.time() - start, 1)},
    }
    write_outputs(out_dir, got, sens, result)
    return result


def compile_command(out_dir: Path, design: Design, layers: list[str], board: str) -> str:
    """The ``qfab compile`` command that builds the chosen design as it was costed."""
    folding = ",".join(f"{name}={pe}x{simd}"
                       for name, (pe, simd) in design.layer_folding(layers).items())
    # The other layers at the search's default folding, not the board's fastest fit.
    return (f"qfab compile {out_dir / 'model.onnx'} --board {board}"
            f" --max-pe {DEFAULT_FOLDING['max_pe']} --max-simd {DEFAULT_FOLDING['max_simd']}"
            + (f" --folding {folding}" if folding else "") + " -o DIR")


def _budget_text(budget: dict[str, float]) -> str:
    return ",".join(f"{k}={v:g}" for k, v in budget.items())
