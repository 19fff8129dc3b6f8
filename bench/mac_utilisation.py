"""How busy the multipliers are: measured II against ideal II (total MACs / multipliers).

For each example, corpus and shared model that lowers: the default folding (at most 4 PE x 8
SIMD a layer), and the same II asked for as a target (``budget_cycles``), where each stage
gets the fewest multipliers meeting it. Measured II is the cycle model's spacing of two
inferences (what co-simulation shows); utilisation = ideal / measured (FINN's published
TFC figure: 61%).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = [ROOT / "examples" / "digits" / "digits_int8.onnx",
          ROOT / "examples" / "digits_resnet" / "digits_resnet_int8.onnx",
          ROOT / "examples" / "tiny" / "mlp_int2.onnx",
          ROOT / "examples" / "tiny" / "conv_s2_int8.onnx",
          ROOT / "bench" / "models" / "jet_tagger_standin.onnx",
          Path("/work/shared/models/qonnx/TFC_2W2A.onnx"),
          ROOT / "tests" / "corpus" / "brevitas" / "tfc_w1a1_qonnx.onnx",
          ROOT / "tests" / "corpus" / "brevitas" / "cnv_w2a2_qonnx.onnx"]


def multipliers(plan) -> int:
    """Products a cycle the plan's MAC stages can make (an adder graph counts its matrix)."""
    n = 0
    for s in plan.stages:
        for b in s.blocks:
            if b.kind in ("mvu", "cmvm"):
                n += b.in_elems * b.out_elems
            elif b.kind == "depthwise":
                n += b.params["simd"]
    return n


def utilisation(plan) -> tuple[int, int, int, float]:
    """(MACs, multipliers, measured II, ideal over measured)."""
    from qfab.cost_model.timing import steady_ii

    macs = sum(s.macs for s in plan.stages)
    mults = multipliers(plan)
    ii = steady_ii(plan)
    return macs, mults, ii, (macs / mults) / ii if mults else 1.0


def run() -> list[str]:
    from qfab.compiler.backend.plan import plan

    from qfab.api import lower_model

    lines = [f"{'model':<28} {'folding':<9} {'MACs':>9} {'mults':>6} {'II':>7} {'util':>6}"]
    for path in MODELS:
        if not path.is_file():
            lines.append(f"{path.stem:<28} skipped: not found")
            continue
        try:
            graph = lower_model(path)
            default = plan(graph)
        except Exception as e:  # a model that does not build yet is a line of this bench
            lines.append(f"{path.stem:<28} does not build: {str(e).splitlines()[0][:70]}")
            continue
        macs, mults, ii, util = utilisation(default)
        lines.append(f"{path.stem:<28} {'default':<9} {macs:>9,} {mults:>6} {ii:>7,} "
                     f"{util:>6.0%}")
        macs, mults, ii2, util = utilisation(plan(graph, budget_cycles=ii))
        lines.append(f"{'':<28} {'target':<9} {macs:>9,} {mults:>6} {ii2:>7,} {util:>6.0%}")
    return lines


if __name__ == "__main__":
    print("\n".join(run()))
