"""qfab against da4ml (0.6) on the same Yosys run (``synth_xilinx -flatten -noiopad``).

Two models at initiation interval 1 (da4ml builds nothing else): the jet-tagger stand-in
(bench/models, 16-64-32-32-5, 6-bit) and TFC_2W2A (784-64-64-64-10, 2-bit). For each, the
LUT, FF, DSP, II and latency of both designs and their ratios (qfab / da4ml) (the folded
MVU's multiply-accumulate lane: bench/mac_lane.py). The first run takes da4ml several
minutes on TFC_2W2A (its trace is cached in ~/.cache/qfab/da4ml; Yosys results in
~/.cache/qfab/synth).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"jet tagger": ROOT / "bench" / "models" / "jet_tagger_standin.onnx",
          "TFC_2W2A": Path("/work/shared/models/qonnx/TFC_2W2A.onnx")}
FAMILY = "xilinx7"
LATENCY_CUTOFF = 5  # da4ml's pipeline cut, in its adder-delay units (its examples' choice)


def _qfab(graph, path: Path) -> dict:
    from qfab.compiler.backend.design import Design
    from qfab.compiler.backend.plan import plan
    from qfab.cost_model.estimate import estimate
    from qfab.cost_model.yosys import synthesize

    start = time.perf_counter()
    hw = plan(graph, budget_cycles=1)
    text = Design(graph, hw, str(path)).verilog()
    built = time.perf_counter() - start
    est = estimate(hw)
    r = synthesize(text, FAMILY)
    return dict(lut=r.lut, ff=r.ff, dsp=r.dsp, ii=est.ii_cycles, latency=est.latency_cycles,
                note=f"built in {built:.0f} s")


def _da4ml(graph, path: Path) -> dict:
    from qfab.cost_model.yosys import synthesize

    from bench import _da4ml

    comb = _da4ml.cached_trace(graph, path)
    with tempfile.TemporaryDirectory() as tmp:
        text, top, latency = _da4ml.verilog(comb, Path(tmp), latency_cutoff=LATENCY_CUTOFF)
    r = synthesize(text, FAMILY, top=top)
    start, _ = _da4ml._chain(graph)
    t = graph.tensors[start]
    rng = np.random.default_rng(0)
    lo, hi = t.fmt.min, t.fmt.max
    codes = rng.integers(lo, hi + 1, size=(256, int(np.prod(t.shape[1:]))))
    ref = _reference_codes(graph, codes)
    half_up = _reference_codes(graph, codes, rounding="half_up")
    return dict(lut=r.lut, ff=r.ff, dsp=r.dsp, ii=1, latency=latency,
                note=f"output codes differing from qfab's reference on {len(codes)} random "
                     f"inputs: {_da4ml.mismatch(comb, half_up, codes)} of {ref.size} with "
                     f"qfab's requant rounding half up as da4ml's, "
                     f"{_da4ml.mismatch(comb, ref, codes)} with its half-even (ties)")


def _reference_codes(graph, codes: np.ndarray, rounding: str | None = None) -> np.ndarray:
    """qfab's integer reference on input codes (the IR after its input quantize), its
    requants rounding as ``rounding`` says if given."""
    import copy

    from qfab.compiler.ir import Graph
    from qfab.sim.reference import Reference

    from bench._da4ml import _chain

    start, nodes = _chain(graph)
    if rounding is not None:
        nodes = [copy.copy(n) for n in nodes]
        for n in nodes:
            if n.op == "requant":
                n.attrs = {**n.attrs, "rounding": rounding}
    sub = Graph(tensors=graph.tensors, nodes=nodes, inputs=[start],
                outputs=[nodes[-1].outputs[0]])
    t = graph.tensors[start]
    out = Reference(sub).run({start: codes.reshape((codes.shape[0], *t.shape[1:]))})
    return np.asarray(next(iter(out.values()))).reshape(codes.shape[0], -1)


def _row(name: str, q: dict | str, d: dict) -> list[str]:
    keys = ("lut", "ff", "dsp", "ii", "latency")
    if isinstance(q, str):
        qcells = ["-"] * len(keys)
        ratios = ["-"] * len(keys)
    else:
        qcells = [f"{q[k]:,}" for k in keys]
        ratios = [f"{q[k] / d[k]:.3f}" if d[k] else ("-" if q[k] == 0 else "inf") for k in keys]
    lines = [f"{name:<11} {'qfab':<6}" + "".join(f"{c:>9}" for c in qcells),
             f"{'':<11} {'da4ml':<6}" + "".join(f"{d[k]:>9,}" for k in keys),
             f"{'':<11} {'ratio':<6}" + "".join(f"{c:>9}" for c in ratios)]
    lines.append(f"{'':<11} qfab: {q if isinstance(q, str) else q['note']}")
    lines.append(f"{'':<11} da4ml: {d['note']}")
    return lines


def run() -> list[str]:
    from qfab.api import lower_model

    try:
        _version()
    except ImportError:
        return ["da4ml not installed (pip install 'da4ml==0.6.*'): side by side skipped"]
    lines = [f"Yosys synth_xilinx -flatten -noiopad; da4ml {_version()} latency_cutoff "
             f"{LATENCY_CUTOFF}; qfab at II 1 (plan budget 1 cycle)",
             "latency: register stages after a registered input, both alike: da4ml's is its "
             "pipeline's stages (it registers its input port, then each stage's output); "
             "qfab's first layer reads the producer's output register, then the cycles to "
             "its output beat. da4ml's FFs include that input register.",
             f"{'model':<11} {'':<6}" + "".join(f"{k:>9}" for k in
                                               ("LUT", "FF", "DSP", "II", "latency"))]
    for name, path in MODELS.items():
        if not path.is_file():
            lines.append(f"{name:<11} skipped: {path} not found")
            continue
        graph = lower_model(path)
        d = _da4ml(graph, path)
        try:
            q = _qfab(graph, path)
        except Exception as e:  # a build that fails is a figure of this bench
            q = f"fails: {type(e).__name__}: {str(e).splitlines()[0][:100] if str(e) else ''}"
        lines += _row(name, q, d)
    return lines


def _version() -> str:
    import da4ml

    return da4ml.__version__


if __name__ == "__main__":
    print("\n".join(run()))
