"""Compile time: TFC_2W2A and the digits CNN from ONNX to Verilog, stage by stage."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"TFC_2W2A": Path("/work/shared/models/qonnx/TFC_2W2A.onnx"),
          "digits_int8": ROOT / "examples" / "digits" / "digits_int8.onnx"}


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def run() -> list[str]:
    from qfab.compiler.backend.design import Design
    from qfab.compiler.backend.firmware import build_soc
    from qfab.compiler.backend.plan import plan

    from qfab.api import lower_model

    lines = [f"{'model':<12} {'import+lower':>13} {'plan':>8} {'verilog':>9} {'total':>8}"
             f" {'+ SoC':>8}", "(+ SoC: firmware and soc.v, which `qfab compile` adds; "
             "the first zig build also compiles its runtime)"]
    for name, path in MODELS.items():
        graph, t_lower = _timed(lambda p=path: lower_model(p))
        hw, t_plan = _timed(lambda g=graph: plan(g))
        design = Design(graph, hw, str(path))
        text, t_verilog = _timed(design.verilog)
        with tempfile.TemporaryDirectory() as tmp:
            _, t_soc = _timed(lambda d=design, t=tmp: build_soc(d, Path(t)))
        total = t_lower + t_plan + t_verilog
        lines.append(f"{name:<12} {t_lower:>12.2f}s {t_plan:>7.2f}s {t_verilog:>8.2f}s "
                     f"{total:>7.2f}s {t_soc:>7.2f}s   ({len(text) // 1024} KiB of Verilog)")
    return lines


if __name__ == "__main__":
    print("\n".join(run()))
