"""The README's search table: ``qfab search --synth`` on the digits CNN and the residual
digits CNN (``--data digits-shifted``, ``--budget lut=2600`` and ``lut=3600``), the best
uniform design against the searched design at its output noise on the calibration images
(the fewest LUTs, chosen without the test split) and the searched design scoring at least
as well, in Yosys's LUTs, the cost model's corrected by the search's Yosys runs
(cost_model/correction.py) and the cost model's own, and the search's wall time, Yosys
apart (results cached in ~/.cache/qfab/synth, so a first run takes minutes more); each
model with the plain post-training quantizer (``--ptq max``) and the default (``gptq``).
Usage:
``python -m bench search_digits``.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Each model and the LUT budget of its search (the residual CNN's int8 design is 4,600 LUTs by
# Yosys: 2,600 fits nothing there).
MODELS = {"digits CNN": (ROOT / "examples" / "digits" / "digits_float.onnx", 2600),
          "residual digits CNN": (ROOT / "examples" / "digits_resnet"
                                  / "digits_resnet_float.onnx", 3600)}


def _design(r: dict | None) -> str:
    """top-1, Yosys LUTs (the corrected model's, the cost model's), DSPs."""
    if r is None:
        return "none"
    return (f"{r['score']:.2%}, {r['yosys_lut']} ({r['lut']}, {r.get('lut_model', r['lut'])}),"
            f" {r['dsp']}")


def _row(name: str, ptq: str, r: dict) -> str:
    c = r["comparison"]
    y = c["yosys"]
    return (f"| {name} | {ptq} | {c['best_uniform']['weights'][0]}: "
            f"{_design(c['best_uniform'])} | "
            f"{_design(c['searched_at_its_noise'])} | {y['lut_saving_at_its_noise'] or 0:.1%} | "
            f"{_design(y['searched_at_its_score'])} | {y['lut_saving_at_its_score'] or 0:.1%} | "
            f"{_design(y['searched_within_fraction'])} | {r['seconds']['search']:.0f} s "
            f"({r['seconds']['yosys']:.0f} s) |")


def run() -> list[str]:
    from qfab.cli import main

    lines = ["| model | quantizer | best uniform: top-1, Yosys LUT (corrected, cost model), DSP"
             " | searched at its calibration noise: top-1, LUT (same) | LUTs saved, Yosys |"
             " searched, as good on test: top-1, LUT (same) | LUTs saved, Yosys | searched"
             " within 80% of its Yosys LUTs | search (Yosys) |",
             "|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, lut) in MODELS.items():
            for ptq in ("max", "gptq"):
                out = Path(tmp) / f"{model.stem}_{ptq}"
                with contextlib.redirect_stdout(io.StringIO()):
                    status = main(["search", str(model), "--data", "digits-shifted",
                                   "--budget", f"lut={lut}", "--synth", "--ptq", ptq,
                                   "-o", str(out)])
                if status != 0:
                    raise RuntimeError(f"qfab search {model.name} --ptq {ptq} exited {status}")
                lines.append(_row(name, ptq, json.loads((out / "search.json").read_text())))
    return lines
