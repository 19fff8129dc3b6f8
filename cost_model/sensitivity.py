"""Per-layer sensitivity and cost of each candidate format, measured one change at a time.

Every MAC layer starts at the baseline (int8 weights and activations). For each layer, each
side (its weights, or the activations it reads) and each candidate format, that one tensor
class alone changes format; the integer reference runs the model on the calibration inputs
and the cost model estimates it (at the default folding, 4 PE x 8 SIMD at most). The
sensitivity is the output's noise power relative to the float model's output, above the
baseline's:

    s = (mean((y_q - y_float)^2) - mean((y_base - y_float)^2)) / mean(y_float^2)

floored at zero. Noise from independent quantizers adds, so the sum over layers predicts the
mixed design's noise (HAWQ-V3 sums per-layer sensitivities the same way); the cost model's
figures are taken as additive too, as the baseline's plus each change's difference.

Costs do not quite add where a requantizer's multiplier becomes a power of two: only when
the layer's weights, its input and the next layer's input all have power-of-two scales
(fixed point) is it a shift instead of a multiplier (a DSP, or LUTs). For each MAC layer
those three change to fixed8 together (a "joint" change), and the program adds the
difference between that design's cost and the three single changes' as a term of its own,
taken when all three groups are fixed point (milp.py).

Each MAC layer's folding (PE x SIMD) is a change of its own: every folding that keeps the
layer within the cycle budget (the baseline's initiation interval unless given) is planned
and estimated with the baseline's formats; it changes cost, not noise. The search verifies
noise and cost on the designs it builds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from qfab.cost_model.quantize import MAC_OPS, QuantSpec, named_nodes

from qfab.errors import QfabError

BASELINE = QuantSpec("int", 8)
RESOURCES = ("lut", "dsp", "bram")
SIDES = ("weights", "activations")
DEFAULT_FOLDING = {"max_pe": 4, "max_simd": 8}  # the baseline's, and the uniform designs'
MAX_FOLDINGS = 6  # folding options a layer offers the program (each runs the cycle model)
JOINT_SPEC = QuantSpec("fixed", 8)  # the format a joint change measures (see above)


def default_candidates() -> list[QuantSpec]:
    """Integers of 2 to 8 bits, fixed point of 4, 6 and 8, and the OCP minifloats."""
    return ([QuantSpec("int", b) for b in range(2, 9)]
            + [QuantSpec("fixed", b) for b in (4, 6, 8)]
            + [QuantSpec("minifloat", minifloat=m) for m in ("E2M1", "E2M3", "E3M2", "E4M3")])


@dataclass(frozen=True)
class Design:
    """Formats of every MAC layer's weights and input activations, and each MAC layer's
    folding, (pe, simd), or None for the planner's own."""

    weights: tuple[QuantSpec, ...]
    activations: tuple[QuantSpec, ...]
    folding: tuple[tuple[int, int] | None, ...] = ()

    def changed(self, layer: int, side: str, spec: QuantSpec) -> Design:
        specs = list(getattr(self, side))
        specs[layer] = spec
        w, a = (specs, self.activations) if side == "weights" else (self.weights, specs)
        return Design(tuple(w), tuple(a), self.folding)

    def folded(self, layer: int, pe_simd: tuple[int, int] | None) -> Design:
        folding = list(self.folding or (None,) * len(self.weights))
        folding[layer] = pe_simd
        return Design(self.weights, self.activations, tuple(folding))

    def layer_folding(self, layers: list[str]) -> dict[str, tuple[int, int]]:
        """The planner's ``layer_folding``: the layers with a folding of their own."""
        return {name: f for name, f in zip(layers, self.folding, strict=False) if f}

    def label(self) -> str:
        return ("w" + "-".join(s.label for s in self.weights) + "_a"
                + "-".join(s.label for s in self.activations)
                + ("_f" + "-".join(f"{f[0]}x{f[1]}" if f else "d" for f in self.folding)
                   if any(self.folding) else ""))


@dataclass
class Built:
    """A design quantized, lowered, planned and estimated: ``cost`` holds ``lut``, ``dsp``,
    ``bram``, ``ii_cycles`` and the Estimate itself."""

    model: onnx.ModelProto
    graph: Any
    plan: Any
    cost: dict[str, Any]


def mac_layers(model: onnx.ModelProto) -> list[str]:
    """Names of the Conv, Gemm and MatMul nodes, in graph order (unnamed ones by output)."""
    return [n.name for n in named_nodes(model).graph.node if n.op_type in MAC_OPS]


def build(float_model: onnx.ModelProto, design: Design, calibration: np.ndarray,
          board, layers: list[str], timing: bool = True, ptq: str = "gptq") -> Built:
    """Quantize (by the post-training quantizer ``ptq``), lower, plan and estimate
    ``design`` (QfabError or ValueError when qfab cannot lower or map it); without
    ``timing``, resources only (no ``ii_cycles``)."""
    from qfab.cost_model.reformat import model_at

    import qfab

    model = model_at(float_model, list(design.weights), list(design.activations), calibration,
                     ptq)
    graph = qfab.lower_model(model)
    return Built(model, graph, *planned(graph, design, board, layers, timing))


def planned(graph, design: Design, board, layers: list[str],
            timing: bool = True) -> tuple[Any, dict[str, Any]]:
    """The plan of a lowered ``design`` under its folding (the default folding elsewhere)
    and its cost-model figures (without ``timing``, resources only)."""
    from qfab.compiler.backend import plan as planning
    from qfab.compiler.backend.pipelining import for_family
    from qfab.cost_model.correction import stage_key
    from qfab.cost_model.estimate import estimate, stage_resources

    # Planned as `qfab compile --board` plans it: the board family's pipelining (on ECP5,
    # products of narrow operands in LUTs, requantizers in shifts and adds).
    hw = planning.plan(graph, clock_hz=board.clock_hz, max_pe=DEFAULT_FOLDING["max_pe"],
                       max_simd=DEFAULT_FOLDING["max_simd"],
                       layer_folding=design.layer_folding(layers),
                       pipelining=for_family(board.family))
    stages = stage_resources(hw, board.family)
    # Each stage's key and LUTs, for a correction learned from Yosys (correction.py).
    keyed = [(stage_key(s, st.dsp), st.lut) for s, st in zip(hw.stages, stages, strict=True)]
    if not timing:
        return hw, {**{r: sum(getattr(st, r) for st in stages) for r in RESOURCES},
                    "stages": keyed}
    est = estimate(hw, board)
    return hw, {"lut": est.lut, "dsp": est.dsp, "bram": est.bram, "ii_cycles": est.ii_cycles,
                "estimate": est, "stages": keyed}


def reference_output(graph, x: np.ndarray) -> np.ndarray:
    import qfab

    return np.asarray(next(iter(qfab.reference(graph, x).values())), np.float64)


def relative_noise(out: np.ndarray, float_out: np.ndarray) -> float:
    return float(np.mean((out - float_out) ** 2) / max(np.mean(float_out ** 2), 1e-30))


def folding_options(hw, layers: list[str], max_cycles: int) -> dict[int, list[tuple[int, int]]]:
    """For each MAC layer (by index), the (pe, simd) foldings that keep its stage within
    ``max_cycles`` an inference, fewest multipliers first: those with at most twice the
    fewest multipliers that meet it, at most ``MAX_FOLDINGS`` of them, other than the
    default's own."""
    from qfab.compiler.backend.plan import divisors

    out = {}
    for stage in hw.stages:
        f = stage.folding
        if stage.name not in layers or not f or "pe" not in f:
            continue
        mh, mw, pe, simd = f["mh"], f["mw"], f["pe"], f["simd"]
        vectors = stage.cycles // ((mh // pe) * (mw // simd))
        fast = sorted((p * s, p, s) for p in divisors(mh) for s in divisors(mw)
                      if vectors * (mh // p) * (mw // s) <= max_cycles)
        if fast:
            out[layers.index(stage.name)] = [(p, s) for n, p, s in fast
                                             if n <= 2 * fast[0][0] and (p, s) != (pe, simd)
                                             ][:MAX_FOLDINGS]
    return out


@dataclass
class Sensitivities:
    """What ``measure`` found: the baseline's noise and cost, and for each available change
    (a layer's weights, activations or folding) its sensitivity (none for a folding) and its
    cost (``ii_cycles`` for a folding only: formats leave cycles as they are);
    ``unavailable`` names the changes qfab cannot lower or map, with the reason."""

    layers: list[str]
    baseline_noise: float
    baseline_cost: dict[str, int]
    baseline_cycles: dict[int, int] = field(default_factory=dict)  # layer -> its stage's
    changes: list[dict[str, Any]] = field(default_factory=list)
    unavailable: list[dict[str, str]] = field(default_factory=list)
    # Several groups changed together: ``groups`` ((layer, side) pairs), ``kind`` (the format
    # family all of them must take for the joint term to apply), ``spec`` (the format
    # measured) and ``cost``.
    joints: list[dict[str, Any]] = field(default_factory=list)

    def table(self) -> list[dict[str, Any]]:
        """One row a change, JSON-ready."""
        return [{"layer": self.layers[c["layer"]], "side": c["side"],
                 "format": option_label(c["spec"]), "sensitivity": c["sensitivity"],
                 **{r: c["cost"][r] for r in (*RESOURCES, "ii_cycles")}}
                for c in self.changes]


def option_label(spec: QuantSpec | tuple[int, int] | None) -> str:
    """A format's label, ``PExSIMD`` for a folding, ``default`` for the planner's."""
    if spec is None:
        return "default"
    return f"{spec[0]}x{spec[1]}" if isinstance(spec, tuple) else spec.label


def measure(float_model: onnx.ModelProto, calibration: np.ndarray, board,
            candidates: list[QuantSpec] | None = None,
            max_ii: int | None = None, ptq: str = "gptq") -> Sensitivities:
    """Sensitivity and cost of every (layer, side, candidate) change from the baseline, and
    the cost of every layer's foldings within ``max_ii`` cycles (default: the baseline's
    initiation interval)."""
    from qfab.cost_model.sweep import float_outputs

    layers = mac_layers(float_model)
    if not layers:
        raise QfabError("the model has no Conv, Gemm or MatMul to search formats for")
    candidates = candidates or default_candidates()
    float_out = float_outputs(float_model, calibration).astype(np.float64)
    base = Design((BASELINE,) * len(layers), (BASELINE,) * len(layers), (None,) * len(layers))
    built = build(float_model, base, calibration, board, layers, ptq=ptq)
    base_noise = relative_noise(reference_output(built.graph, calibration), float_out)
    found = Sensitivities(layers, base_noise, _figures(built.cost))
    for layer in range(len(layers)):
        for side in SIDES:
            for spec in candidates:
                if spec == BASELINE:
                    continue
                try:
                    b = build(float_model, base.changed(layer, side, spec), calibration,
                              board, layers, timing=False, ptq=ptq)
                except (QfabError, ValueError) as e:
                    found.unavailable.append({"layer": layers[layer], "side": side,
                                              "format": spec.label, "reason": str(e)})
                    continue
                noise = relative_noise(reference_output(b.graph, calibration), float_out)
                found.changes.append({"layer": layer, "side": side, "spec": spec,
                                      "sensitivity": max(noise - base_noise, 0.0),
                                      "cost": _figures(b.cost)})
    fixed = JOINT_SPEC if JOINT_SPEC in candidates else None
    for layer in range(len(layers) if fixed else 0):
        groups = [(layer, "weights"), (layer, "activations")]
        groups += [(layer + 1, "activations")] if layer + 1 < len(layers) else []
        design = base
        for i, side in groups:
            design = design.changed(i, side, fixed)
        try:
            b = build(float_model, design, calibration, board, layers, timing=False, ptq=ptq)
        except (QfabError, ValueError):
            continue
        found.joints.append({"groups": groups, "kind": fixed.kind, "spec": fixed,
                             "cost": _figures(b.cost)})
    found.baseline_cycles = {layers.index(st.name): st.cycles for st in built.plan.stages
                             if st.name in layers}
    limit = max_ii or built.cost["ii_cycles"]
    for layer, options in folding_options(built.plan, layers, limit).items():
        for pe_simd in options:
            hw, cost = planned(built.graph, base.folded(layer, pe_simd), board, layers)
            # The stage's own cycles, or the design's interval where this folding alone
            # slows the default design down (its streams' widths hold the neighbours up).
            cycles = next(st.cycles for st in hw.stages if st.name == layers[layer])
            if cost["ii_cycles"] > built.cost["ii_cycles"]:
                cycles = max(cycles, cost["ii_cycles"])
            found.changes.append({"layer": layer, "side": "folding", "spec": pe_simd,
                                  "sensitivity": 0.0, "cost": _figures(cost),
                                  "cycles": cycles})
    return found


def _figures(cost: dict[str, Any]) -> dict[str, Any]:
    return {**{k: None if cost.get(k) is None else int(cost[k])
               for k in (*RESOURCES, "ii_cycles")}, "stages": cost["stages"]}
