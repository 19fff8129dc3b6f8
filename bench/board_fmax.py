"""Routed Fmax of the digits CNN (`qfab build`): the accelerator on the ULX3S 85F (ECP5-85F,
speed grade 6), aiming at 150 MHz, the SoC there aiming at 100 MHz, and the accelerator
compiled for the iCEBreaker on its iCE40UP5K; beside each, the Fmax the netlist promised
before place and route (qfab.cost_model.fmax). Builds are cached (~/.cache/qfab/pnr), so
only the first run pays for place and route: on this two-core machine, some ten minutes a
build."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from qfab.cli import main as qfab

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "digits" / "digits_int8.onnx"
# (board, compile flags, top, target MHz): on the ULX3S, the design that fits fastest (fully
# unrolled) and the one folded at most 4 x 8 a layer (matrix-vector units and DSPs).
BUILDS = [("ulx3s-85f", (), "accel", 150),
          ("ulx3s-85f", ("--max-pe", "4", "--max-simd", "8"), "accel", 150),
          ("ulx3s-85f", (), "soc", 100), ("icebreaker", (), "accel", 12)]


def _build(folder: Path, board: str, top: str, mhz: float) -> dict:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = qfab(["build", str(folder), "--board", board, "--top", top,
                       "--freq", f"{mhz:g}", "--json"])
    if status != 0:
        raise RuntimeError(f"qfab build {board} {top} exited {status}")
    return json.loads(out.getvalue())["build"]


def run() -> list[str]:
    lines = ["| board | compiled | top | target MHz | routed Fmax MHz | estimated MHz | "
             "inferences/s | critical path | placed |", "|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="qfab-bench-board-") as tmp:
        for board, flags in dict.fromkeys((b, f) for b, f, _, _ in BUILDS):
            folder = Path(tmp) / f"{board}{''.join(flags)}"
            assert qfab(["compile", str(MODEL), "--board", board, *flags,
                         "-o", str(folder)]) == 0
            for _, _, top, mhz in (b for b in BUILDS if b[:2] == (board, flags)):
                r = _build(folder, board, top, mhz)
                cp = r["critical_path"] or {}
                use = ", ".join(f"{k} {v['used']}/{v['available']}"
                                for k, v in r["utilization"].items()
                                if k in ("TRELLIS_COMB", "TRELLIS_FF", "MULT18X18D", "DP16KD",
                                         "ICESTORM_LC", "ICESTORM_DSP", "ICESTORM_RAM"))
                est = r.get("estimated_mhz")
                lines.append(f"| {board} | {' '.join(flags) or 'default'} | {top} | {mhz:g} | "
                             f"{r['fmax_mhz']:.1f} | "
                             f"{'-' if est is None else f'{est:.1f}'} | "
                             f"{r['throughput_fps'] or 0:,.0f} | {cp.get('from_stage')} -> "
                             f"{cp.get('to_stage')} | {use} |")
    return lines
