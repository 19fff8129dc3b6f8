"""`qfab sweep`: cost and accuracy over a design space of formats, bit widths and foldings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qfab.errors import QfabError

HELP = ("sweep formats x bit widths x folding of a float MODEL: cost model (+ Yosys) and "
        "accuracy; DIR/results.csv, results.json and PNG plots")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", nargs="?",
                        help="float ONNX model (default: the space file's `model`)")
    parser.add_argument("--space", required=True, metavar="SPACE.yaml",
                        help="the design space (see examples/digits_sweep.yaml)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="output folder; DIR/cache keeps finished points")
    parser.add_argument("--data", metavar="DATA",
                        help="digits, digits-shifted, an .npz (x, y, x_calibration), an .npy (x), "
                             "or a folder "
                             "of .npy files or of class folders of images (default: the "
                             "space's `dataset`)")
    parser.add_argument("--executor", default="local", metavar="local|dask://HOST:PORT",
                        help="a local process pool (default) or a Dask scheduler")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="local processes (default: 2, or the CPU count if smaller)")
    parser.add_argument("--synth", action="store_true",
                        help="also synthesize every point with Yosys (slow)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from qfab.cost_model.datasets import BUILT_IN
    from qfab.cost_model.space import load_space
    from qfab.cost_model.sweep import run_sweep

    space = load_space(args.space)
    if args.synth:
        space.synth = True
    if args.data:
        built_in = args.data in BUILT_IN
        if not built_in and not Path(args.data).exists():
            raise QfabError(f"--data {args.data}: no such file or folder")
        space.data = args.data if built_in else str(Path(args.data).resolve())
    model = Path(args.model) if args.model else space.model
    if model is None:
        raise QfabError(f"no MODEL given and {args.space} has no `model` key")
    if not model.is_file():
        raise QfabError(f"model {model}: no such file")
    if args.workers is not None and args.workers < 1:
        raise QfabError(f"--workers must be at least 1, not {args.workers}")
    out = Path(args.output)
    rows = run_sweep(space, model, out, executor=args.executor, workers=args.workers,
                     progress=not args.quiet)
    proxies = sum(str(r.get("hw", "")).startswith("proxy") for r in rows)
    print(f"{len(rows)} points; {proxies} with proxy hardware (see the hw column)",
          file=sys.stderr)
    for name in ("results.csv", "results.json", "lut_vs_bits.png", "dsp_vs_bits.png",
                 "accuracy_vs_lut.png"):
        print(out / name)
    return 0
