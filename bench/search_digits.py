"""The README's search table: ``qfab search --synth`` on the digits CNN and the residual
digits CNN (``--data digits-shifted``), the best uniform design against the searched design
at its output noise on the calibration images (the fewest LUTs, chosen without the test
split) and the searched design scoring at least as well, in Yosys's LUTs, the cost model's
corrected by the search's Yosys runs (cost_model/correction.py) and the cost model's own,
and the search's wall time, Yosys apart (results cached in ~/.cache/qfab/synth, so a first
run takes minutes more). On the PYNQ-Z2 (the default board: products of 5 bits and more in
DSP48s) each model with the plain post-training quantizer (``--ptq max``) and the default
(``gptq``); on the ULX3S (``--board ulx3s-85f``: designs pipelined for ECP5, products of
operands up to 9 bits in LUTs) with the default.
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
MODELS = {"digits CNN": ROOT / "examples" / "digits" / "digits_float.onnx",
          "residual digits CNN": ROOT / "examples" / "digits_resnet" / "digits_resnet_float.onnx"}
# The runs: board, post-training quantizers, and each model's LUT budget (below its int8
# design's LUTs by Yosys: on the PYNQ-Z2 3,200 and 4,600, on the ULX3S 14,800 and 22,100 LUT4s).
RUNS = [("pynq-z2", ("max", "gptq"), {"digits CNN": 2600, "residual digits CNN": 3600}),
        ("ulx3s-85f", ("gptq",), {"digits CNN": 12000, "residual digits CNN": 22000})]


def _design(r: dict | None) -> str:
    """top-1, Yosys LUTs (the corrected model's, the cost model's), DSPs."""
    if r is None:
        return "none"
    return (f"{r['score']:.2%}, {r['yosys_lut']} ({r['lut']}, {r.get('lut_model', r['lut'])}),"
            f" {r['dsp']}")


def _row(name: str, board: str, ptq: str, r: dict) -> str:
    c = r["comparison"]
    y = c["yosys"]
    return (f"| {name} | {board} | {ptq} | {c['best_uniform']['weights'][0]}: "
            f"{_design(c['best_uniform'])} | "
            f"{_design(c['searched_at_its_noise'])} | {y['lut_saving_at_its_noise'] or 0:.1%} | "
            f"{_design(y['searched_at_its_score'])} | {y['lut_saving_at_its_score'] or 0:.1%} | "
            f"{_design(y['searched_within_fraction'])} | {r['seconds']['search']:.0f} s "
            f"({r['seconds']['yosys']:.0f} s) |")


def run() -> list[str]:
    from qfab.cli import main

    lines = ["| model | board | quantizer | best uniform: top-1, Yosys LUT (corrected, cost"
             " model), DSP | searched at its calibration noise: top-1, LUT (same) | LUTs"
             " saved, Yosys | searched, as good on test: top-1, LUT (same) | LUTs saved,"
             " Yosys | searched within 80% of its Yosys LUTs | search (Yosys) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for board, quantizers, budgets in RUNS:
            for name, model in MODELS.items():
                for ptq in quantizers:
                    out = Path(tmp) / f"{model.stem}_{board}_{ptq}"
                    with contextlib.redirect_stdout(io.StringIO()):
                        status = main(["search", str(model), "--data", "digits-shifted",
                                       "--budget", f"lut={budgets[name]}", "--board", board,
                                       "--synth", "--ptq", ptq, "-o", str(out)])
                    if status != 0:
                        raise RuntimeError(f"qfab search {model.name} --board {board}"
                                           f" --ptq {ptq} exited {status}")
                    lines.append(_row(name, board, ptq,
                                      json.loads((out / "search.json").read_text())))
    return lines
