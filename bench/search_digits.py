"""The README's search table: ``qfab search --synth`` on the digits CNN and the residual
digits CNN (``--data digits-shifted --budget lut=2600``), the best uniform design against the
searched design scoring at least as well, in the cost model's LUTs and in Yosys's, and the
search's wall time (Yosys apart; results cached in ~/.cache/qfab/synth, so a first run
takes minutes more). Usage: ``python -m bench search_digits``.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"digits CNN": ROOT / "examples" / "digits" / "digits_float.onnx",
          "residual digits CNN": ROOT / "examples" / "digits_resnet" / "digits_resnet_float.onnx"}


def _row(name: str, r: dict) -> str:
    c = r["comparison"]
    best, y = c["best_uniform"], c["yosys"]
    found = y["searched_at_its_score"]
    at_best = c["searched_at_its_score"]
    within = y["searched_within_fraction"]
    searched = (f"{found['score']:.2%}, {found['lut']} ({found['yosys_lut']} Yosys), "
                f"{found['dsp']}" if found else "none")
    inside = (f"{within['score']:.2%}, {within['yosys_lut']} Yosys" if within else "none")
    return (f"| {name} | {best['weights'][0]}: {best['score']:.2%}, {best['lut']} "
            f"({best['yosys_lut']} Yosys), {best['dsp']} | {searched} | "
            f"{c['lut_saving_at_its_score'] or 0:.1%} ({at_best and at_best['lut']}) | "
            f"{y['lut_saving_at_its_score'] or 0:.1%} | {inside} | "
            f"{r['seconds']['search']:.0f} s |")


def run() -> list[str]:
    from qfab.cli import main

    lines = ["| model | best uniform (top-1, LUT, DSP) | searched, as good by Yosys (top-1, "
             "LUT, DSP) | LUTs saved, cost model (that design's LUT) | LUTs saved, Yosys | "
             "searched within 80% of its Yosys LUTs (top-1, LUT) | search |",
             "|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in MODELS.items():
            out = Path(tmp) / model.stem
            with contextlib.redirect_stdout(io.StringIO()):
                status = main(["search", str(model), "--data", "digits-shifted", "--budget",
                               "lut=2600", "--synth", "-o", str(out)])
            if status != 0:
                raise RuntimeError(f"qfab search {model.name} exited {status}")
            lines.append(_row(name, json.loads((out / "search.json").read_text())))
    return lines
