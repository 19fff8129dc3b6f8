"""How busy the multipliers are: busy multiplier-cycles over available ones, MACs /
(multipliers x II), for every example and corpus model that lowers (and the jet-tagger
stand-in and TFC_2W2A): at most 4 PE x 8 SIMD a layer (``--max-pe 4 --max-simd 8``, the
default before balanced folding) and the default, balanced
(:func:`~qfab.compiler.backend.balance.balanced_plan`: double-buffered MVUs, join FIFOs
sized by the cycle model). II is the cycle model's spacing of two inferences streamed back
to back (what co-simulation measures); an adder graph counts its matrix as multipliers.
FINN's published TFC figure: 61%. The last line counts the models at 95% or more.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = sorted((ROOT / "examples").glob("*/*.onnx")) + sorted(
    (ROOT / "tests" / "corpus").glob("*/*.onnx")) + [
    ROOT / "bench" / "models" / "jet_tagger_standin.onnx",
    Path("/work/shared/models/qonnx/TFC_2W2A.onnx")]


def utilisation(plan) -> tuple[int, int, int, float]:
    """(MACs, multipliers, measured II, MACs / (multipliers x II))."""
    from qfab.compiler.backend.balance import multipliers
    from qfab.cost_model.timing import steady_ii

    macs = sum(s.macs for s in plan.stages)
    mults = multipliers(plan)
    ii = steady_ii(plan)
    return macs, mults, ii, macs / (mults * ii) if mults else 1.0


def run() -> list[str]:
    from qfab.compiler.backend.balance import balanced_plan
    from qfab.compiler.backend.plan import plan
    from qfab.cost_model.fifo_sizing import sized_fifos

    from qfab.api import lower_model

    lines = [f"{'model':<32} {'MACs':>9} | {'4x8: mults':>10} {'II':>7} {'util':>5} | "
             f"{'default: mults':>15} {'II':>7} {'util':>5}"]
    busy = []
    for path in MODELS:
        if not path.is_file():
            lines.append(f"{path.stem:<32} skipped: not found")
            continue
        try:
            graph = lower_model(path)
            capped, balanced = plan(graph), sized_fifos(balanced_plan(graph))
        except Exception as e:  # a model that does not build yet is a line of this bench
            lines.append(f"{path.stem:<32} does not build: {str(e).splitlines()[0][:70]}")
            continue
        macs, m1, ii1, u1 = utilisation(capped)
        _, m2, ii2, u2 = utilisation(balanced)
        lines.append(f"{path.stem:<32} {macs:>9,} | {m1:>10} {ii1:>7,} {u1:>5.0%} | "
                     f"{m2:>15} {ii2:>7,} {u2:>5.0%}")
        busy.append(u2 >= 0.95)
    lines.append(f"default at 95% or more: {sum(busy)} of the {len(busy)} models that build")
    return lines


if __name__ == "__main__":
    print("\n".join(run()))
