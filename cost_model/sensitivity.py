"""Per-layer sensitivity and cost of each candidate format, measured one change at a time.

Every MAC layer starts at the baseline (int8 weights and activations). For each layer, each
side (its weights, or the activations it reads) and each candidate format, that one tensor
class alone changes format; the integer reference runs the model on the calibration inputs
and the cost model estimates it under every folding. The sensitivity is the output's noise
power relative to the float model's output, above the baseline's:

    s = (mean((y_q - y_float)^2) - mean((y_base - y_float)^2)) / mean(y_float^2)

floored at zero. Noise from independent quantizers adds, so the sum over layers predicts the
mixed design's noise (HAWQ-V3 sums per-layer sensitivities the same way); the cost model's
figures are taken as additive too, as the baseline's plus each change's difference. The
search verifies both on the design it picks.
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


def default_candidates() -> list[QuantSpec]:
    """Integers of 2 to 8 bits, fixed point of 4, 6 and 8, and the OCP minifloats."""
    return ([QuantSpec("int", b) for b in range(2, 9)]
            + [QuantSpec("fixed", b) for b in (4, 6, 8)]
            + [QuantSpec("minifloat", minifloat=m) for m in ("E2M1", "E2M3", "E3M2", "E4M3")])


@dataclass(frozen=True)
class Design:
    """Formats of every MAC layer's weights and input activations, and a folding."""

    weights: tuple[QuantSpec, ...]
    activations: tuple[QuantSpec, ...]
    folding: tuple[tuple[str, float], ...] = ()

    def changed(self, layer: int, side: str, spec: QuantSpec) -> Design:
        specs = list(getattr(self, side))
        specs[layer] = spec
        w, a = (specs, self.activations) if side == "weights" else (self.weights, specs)
        return Design(tuple(w), tuple(a), self.folding)

    def label(self) -> str:
        return ("w" + "-".join(s.label for s in self.weights) + "_a"
                + "-".join(s.label for s in self.activations))


@dataclass
class Built:
    """A design quantized, lowered and estimated: ``cost[folding index]`` holds ``lut``,
    ``dsp``, ``bram``, ``ii_cycles`` and the Estimate itself."""

    model: onnx.ModelProto
    graph: Any
    cost: list[dict[str, Any]]


def mac_layers(model: onnx.ModelProto) -> list[str]:
    """Names of the Conv, Gemm and MatMul nodes, in graph order (unnamed ones by output)."""
    return [n.name for n in named_nodes(model).graph.node if n.op_type in MAC_OPS]


def build(float_model: onnx.ModelProto, design: Design, calibration: np.ndarray,
          foldings: list[dict[str, float]], board) -> Built:
    """Quantize, lower, plan and estimate ``design`` under each folding (QfabError or
    ValueError when qfab cannot lower or map it)."""
    from qfab.compiler.backend import plan as planning
    from qfab.cost_model.estimate import estimate
    from qfab.cost_model.reformat import model_at

    import qfab

    model = model_at(float_model, list(design.weights), list(design.activations),
                           calibration)
    graph = qfab.lower_model(model)
    costs = []
    for f in foldings:
        hw = planning.plan(graph, target_fps=f.get("target_fps"), clock_hz=board.clock_hz,
                           max_pe=int(f.get("max_pe", planning.DEFAULT_MAX_PE)),
                           max_simd=int(f.get("max_simd", planning.DEFAULT_MAX_SIMD)))
        est = estimate(hw, board)
        costs.append({"lut": est.lut, "dsp": est.dsp, "bram": est.bram,
                      "ii_cycles": est.ii_cycles, "estimate": est})
    return Built(model, graph, costs)


def reference_output(graph, x: np.ndarray) -> np.ndarray:
    import qfab

    return np.asarray(next(iter(qfab.reference(graph, x).values())), np.float64)


def relative_noise(out: np.ndarray, float_out: np.ndarray) -> float:
    return float(np.mean((out - float_out) ** 2) / max(np.mean(float_out ** 2), 1e-30))


@dataclass
class Sensitivities:
    """What ``measure`` found: the baseline's noise and cost, and for each available change
    (layer, side, format) its sensitivity and cost under every folding; ``unavailable`` names
    the changes qfab cannot lower or map, with the reason."""

    layers: list[str]
    foldings: list[dict[str, float]]
    baseline_noise: float
    baseline_cost: list[dict[str, Any]]
    changes: list[dict[str, Any]] = field(default_factory=list)
    unavailable: list[dict[str, str]] = field(default_factory=list)

    def table(self) -> list[dict[str, Any]]:
        """One row a change, JSON-ready (costs for the first folding)."""
        return [{"layer": self.layers[c["layer"]], "side": c["side"], "format": c["spec"].label,
                 "sensitivity": c["sensitivity"],
                 **{r: c["cost"][0][r] for r in (*RESOURCES, "ii_cycles")}}
                for c in self.changes]


def measure(float_model: onnx.ModelProto, calibration: np.ndarray,
            foldings: list[dict[str, float]], board,
            candidates: list[QuantSpec] | None = None) -> Sensitivities:
    """Sensitivity and cost of every (layer, side, candidate) change from the baseline."""
    from qfab.cost_model.sweep import float_outputs

    layers = mac_layers(float_model)
    if not layers:
        raise QfabError("the model has no Conv, Gemm or MatMul to search formats for")
    candidates = candidates or default_candidates()
    float_out = float_outputs(float_model, calibration).astype(np.float64)
    base = Design((BASELINE,) * len(layers), (BASELINE,) * len(layers))
    built = build(float_model, base, calibration, foldings, board)
    base_noise = relative_noise(reference_output(built.graph, calibration), float_out)
    found = Sensitivities(layers, foldings, base_noise, _figures(built.cost))
    for layer in range(len(layers)):
        for side in SIDES:
            for spec in candidates:
                if spec == BASELINE:
                    continue
                try:
                    b = build(float_model, base.changed(layer, side, spec), calibration,
                              foldings, board)
                except (QfabError, ValueError) as e:
                    found.unavailable.append({"layer": layers[layer], "side": side,
                                              "format": spec.label, "reason": str(e)})
                    continue
                noise = relative_noise(reference_output(b.graph, calibration), float_out)
                found.changes.append({"layer": layer, "side": side, "spec": spec,
                                      "sensitivity": max(noise - base_noise, 0.0),
                                      "cost": _figures(b.cost)})
    return found


def _figures(costs: list[dict[str, Any]]) -> list[dict[str, int]]:
    return [{k: int(c[k]) for k in (*RESOURCES, "ii_cycles")} for c in costs]
