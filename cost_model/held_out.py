"""Whole designs held out of the cost model's fit, with their Yosys figures recorded.

The LUT weights are fitted on the calibration grid's blocks only (:mod:`calibrate`); these
designs, unrolled (initiation interval 1: adder graphs) and folded (multipliers and weight
memories), check the sum of the blocks out of sample. ``tests/cost_model/test_held_out.py``
estimates them (and the :data:`BALANCED` ones) now against the figures recorded in
``held_out.csv``, within ``BOUNDS`` over them all;
after a change to the hardware, record them again (most of an hour on this loaded 2-core
machine, TFC_2W2A at II 1 the longest; Yosys results cached in ~/.cache/qfab/synth):

    python -m qfab.cost_model.held_out [--shared-models DIR] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

HERE = Path(__file__).parent
TABLE = HERE / "held_out.csv"
FAMILY, BOARD = "xilinx7", "pynq-z2"
# Relative LUT error of the estimate against Yosys over the designs; DSP and BRAM exact.
BOUNDS = {"lut_median": 0.05, "lut_worst": 0.15}
# name, model (under the checkout, or under the shared models folder with "shared/"),
# folding: a target initiation interval, or "4x8" (at most 4 PE x 8 SIMD a layer, the
# default before balanced folding)
HELD_OUT = [
    ("mlp_int2", "examples/tiny/mlp_int2.onnx", "4x8"),
    ("TFC_2W2A", "shared/qonnx/TFC_2W2A.onnx", "4x8"),
    ("digits_int8", "examples/digits/digits_int8.onnx", "4x8"),
    ("digits_resnet_int8", "examples/digits_resnet/digits_resnet_int8.onnx", "4x8"),
    ("jet_standin_ii1", "bench/models/jet_tagger_standin.onnx", 1),
    ("TFC_2W2A_ii1", "shared/qonnx/TFC_2W2A.onnx", 1),
]
# The same models at the default, balanced folding (held out too, within the same BOUNDS).
BALANCED = [(f"{name}_balanced", model, None) for name, model, _ in HELD_OUT[:4]]
KEYS = ("lut", "ff", "dsp", "bram")


def compiled(model: Path, folding: int | str | None):
    """The design ``qfab compile`` builds for a ``HELD_OUT`` folding."""
    import qfab

    if folding == "4x8":
        return qfab.compile(str(model), max_pe=4, max_simd=8)
    return qfab.compile(str(model), target_ii=folding)


def model_path(model: str, shared: Path) -> Path:
    """Where a ``HELD_OUT`` model is: under ``shared`` or the checkout."""
    if model.startswith("shared/"):
        return shared / model.removeprefix("shared/")
    return HERE.parent / model


def estimated(model: Path, folding: int | str | None) -> dict[str, int]:
    """The cost model's figures for the design ``qfab compile`` builds."""
    from qfab.cost_model.estimate import estimate

    e = estimate(compiled(model, folding), BOARD)
    return {k: getattr(e, k) for k in KEYS}


def recorded() -> dict[str, dict[str, int]]:
    """The Yosys figures in ``held_out.csv`` by design name."""
    with TABLE.open() as f:
        return {r["name"]: {k: int(r[f"{k}_yosys"]) for k in KEYS} for r in csv.DictReader(f)}


def record(shared: Path, only: list[str] | None = None) -> None:
    """Synthesize every held-out design (or those named in ``only``, keeping the others'
    rows) and write ``held_out.csv`` (estimate beside)."""
    from qfab.cost_model.yosys import synthesize

    with TABLE.open() as f:
        kept = {r["name"]: r for r in csv.DictReader(f)}
    rows = []
    for name, model, folding in HELD_OUT + BALANCED:
        if only and name not in only and name in kept:
            rows.append(kept[name])
            continue
        path = model_path(model, shared)
        got = synthesize(compiled(path, folding).verilog(), FAMILY)
        est = estimated(path, folding)
        rows.append({"name": name, **{f"{k}_est": est[k] for k in KEYS},
                     **{f"{k}_yosys": getattr(got, k) for k in KEYS}})
        print(name, {k: (est[k], getattr(got, k)) for k in KEYS}, flush=True)
    tmp = TABLE.with_suffix(f".{os.getpid()}.tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, TABLE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-models", type=Path, default=Path("/work/shared/models"),
                        help="the folder holding qonnx/TFC_2W2A.onnx")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="record these designs again, keep the others' rows")
    args = parser.parse_args()
    record(args.shared_models, args.only)


if __name__ == "__main__":
    main()
