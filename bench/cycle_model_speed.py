"""Cycle model speed: the handshake model run clock by clock (``run_chain``, the definition)
and from event to event (``run_events``), side by side on the same plans, with the run
``plan_timing`` picks (events, or clock by clock where blocks change almost every cycle).

Batch 2 is what ``qfab compile`` runs (the modeled initiation interval); the ResNet-8-sized
model is bench/_resnet8.py. Times are CPU seconds of this process; the
two runs' traces are asserted equal.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.compile_speed import DIGITS, ROOT, TFC
from bench.compile_speed import _timed as _cpu

RESIDUAL = ROOT / "examples" / "digits_resnet" / "digits_resnet_int8.onnx"


def _row(name: str, hw, batch: int) -> str:
    from qfab.cost_model.events import run_events
    from qfab.cost_model.handshake import run_chain
    from qfab.cost_model.timing import STEP_DENSITY, _chains

    beats = (hw.in_beats * batch, hw.out_beats * batch)

    def run(engine, **kw):
        chain, _, skips, _ = _chains(hw.stages)
        return _cpu(lambda: engine(chain, *beats, skips=tuple(skips), **kw))

    clocked, t_clocked = run(run_chain)
    events, t_events = run(run_events)
    assert events == clocked, f"{name}: the event-driven trace differs"
    gives_way, _ = run(run_events, give_way=STEP_DENSITY)
    cycles = clocked.transfers[-1][-1] + 1
    picked = "clocked" if gives_way is None else "events"
    return (f"{name:<28} {batch:>5} {cycles:>9} {t_clocked:>9.2f}s {t_events:>8.2f}s "
            f"{t_clocked / t_events:>7.2f}x  {picked}")


def run() -> list[str]:
    from qfab.compiler.backend.plan import plan

    from bench._resnet8 import write_resnet8
    from qfab.api import lower_model

    lines = [f"{'model':<28} {'batch':>5} {'cycles':>9} {'clocked':>10} {'events':>9} "
             f"{'speedup':>8}  plan_timing runs"]
    with tempfile.TemporaryDirectory() as tmp:
        resnet8 = write_resnet8(Path(tmp) / "resnet8_int8.onnx")
        cases = [("TFC_2W2A", TFC, {}, 2), ("TFC_2W2A pe1 simd2", TFC,
                                            {"max_pe": 1, "max_simd": 2}, 2),
                 ("digits CNN", DIGITS, {}, 2), ("digits CNN", DIGITS, {}, 8),
                 ("digits residual CNN", RESIDUAL, {}, 2),
                 ("ResNet-8-sized", resnet8, {}, 2),
                 ("ResNet-8-sized pe16 simd32", resnet8, {"max_pe": 16, "max_simd": 32}, 2)]
        for name, path, folding, batch in cases:
            lines.append(_row(name, plan(lower_model(path), **folding), batch))
    return lines


if __name__ == "__main__":
    print("\n".join(run()))
