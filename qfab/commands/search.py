"""`qfab search`: one format per layer, and a folding, chosen under a hardware budget."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qfab.errors import QfabError

HELP = ("choose a number format per layer of a float MODEL (integer linear program over "
        "measured sensitivities) within a LUT/DSP/BRAM budget; DIR/model.onnx, search.json, "
        "pareto.png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="float ONNX model")
    parser.add_argument("--data", required=True, metavar="DATA",
                        help="digits, digits-shifted, an .npz (x, y, x_calibration), an .npy (x), "
                             "or a folder "
                             "of .npy files or of class folders of images")
    parser.add_argument("--budget", required=True, metavar="lut=N,dsp=N,bram=N",
                        help="resource limits (any of lut, dsp, bram; the board's for the rest)")
    parser.add_argument("--target-fps", type=float, metavar="F",
                        help="inferences a second the design must sustain (a cycle budget)")
    parser.add_argument("--board", default="pynq-z2", metavar="B", help="default: pynq-z2")
    parser.add_argument("--formats", metavar="F,F,...",
                        help="candidate formats (default: int2..int8, fixed4,fixed6,fixed8, "
                             "E2M1,E2M3,E3M2,E4M3)")
    parser.add_argument("--calibration-images", type=int, default=256, metavar="N",
                        help="samples that set the scales and measure sensitivity (256)")
    parser.add_argument("--ptq", choices=("gptq", "max"), default="gptq",
                        help="post-training quantizer: gptq (ranges of least error, GPTQ "
                             "rounding, bias correction; default) or max (one scale from "
                             "the largest value, rounding to nearest)")
    parser.add_argument("--test-images", type=int, metavar="N",
                        help="score on the first N test samples only")
    parser.add_argument("--synth", action="store_true",
                        help="also synthesize the chosen design, the best uniform one and "
                             "the searched designs scoring as well with Yosys (slower; "
                             "cached)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")


def parse_budget(text: str) -> dict[str, float]:
    """``lut=N,dsp=N,bram=N`` (any subset) -> {resource: limit}."""
    budget = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("lut", "dsp", "bram"):
            raise QfabError(f"--budget {text!r}: expected lut=N,dsp=N,bram=N, not {part!r}")
        try:
            limit = float(value)
        except ValueError:
            limit = -1.0
        if not limit >= 0 or limit == float("inf"):
            raise QfabError(f"--budget {text!r}: {key} must be a non-negative number, "
                            f"not {value!r}")
        budget[key] = limit
    return budget


def parse_formats(text: str) -> list:
    """``int4,fixed6,E2M1`` -> QuantSpecs."""
    from qfab.cost_model.quantize import QuantSpec

    specs = []
    for name in filter(None, (t.strip() for t in text.split(","))):
        try:
            if name.lower().startswith(("int", "fixed")):
                kind = "int" if name.lower().startswith("int") else "fixed"
                specs.append(QuantSpec(kind, bits=int(name[len(kind):])))
            else:
                specs.append(QuantSpec("minifloat", minifloat=name.upper().removesuffix("FN")))
        except ValueError as e:
            raise QfabError(f"--formats: {name!r}: {e}") from None
    if not specs:
        raise QfabError("--formats: no format given")
    return specs


def run(args: argparse.Namespace) -> int:
    from qfab.compiler.frontend.importer import load_model
    from qfab.cost_model.boards import load_board
    from qfab.cost_model.datasets import check_fits, load_data
    from qfab.cost_model.search import run_search

    budget = parse_budget(args.budget)
    candidates = parse_formats(args.formats) if args.formats else None
    if args.target_fps is not None and not 0 < args.target_fps < float("inf"):
        raise QfabError(f"--target-fps must be a positive number, not {args.target_fps}")
    for flag, n in (("--calibration-images", args.calibration_images),
                    ("--test-images", args.test_images)):
        if n is not None and n < 1:
            raise QfabError(f"{flag} must be at least 1, not {n}")
    board = load_board(args.board)
    budget = {r: budget.get(r, getattr(board, r)) for r in ("lut", "dsp", "bram")}
    model = load_model(args.model)
    data = load_data(args.data, args.calibration_images, args.test_images)
    check_fits(data, model)
    result = run_search(model, data, board, budget, Path(args.output),
                        target_fps=args.target_fps, candidates=candidates,
                        synth=args.synth, ptq=args.ptq)
    chosen = result["chosen"]
    print(f"chosen: weights {'/'.join(chosen['weights'])}, activations "
          f"{'/'.join(chosen['activations'])}; {result['metric']} {chosen['score']:.4f}; "
          f"lut {chosen['lut']}, dsp {chosen['dsp']}, bram {chosen['bram']}, "
          f"ii {chosen['ii_cycles']} cycles"
          + (f", {chosen['yosys_lut']} LUT by Yosys" if "yosys_lut" in chosen else "")
          + f" ({result['seconds']['total']:.0f} s); "
          f"build it with: {chosen['compile']}", file=sys.stderr)
    for name in ("model.onnx", "estimate.json", "search.json", "sensitivity.csv", "pareto.png"):
        print(Path(args.output) / name)
    return 0
