"""`qfab compile`: Verilog, manifest and report for a model."""

from __future__ import annotations

import argparse
import sys

HELP = "compile MODEL to a dataflow accelerator: DIR/accelerator.v, manifest.json, report.md"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="quantized ONNX model")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    add_design_arguments(parser)


def add_design_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by the commands that build a design."""
    parser.add_argument("--board", metavar="B", help="board name or YAML file (sets the clock)")
    parser.add_argument("--target-fps", type=float, metavar="N",
                        help="fold each layer to the fewest multipliers meeting N inferences/s")
    parser.add_argument("--max-pe", type=int, metavar="P",
                        help="without --target-fps: at most P output channels per cycle")
    parser.add_argument("--max-simd", type=int, metavar="S",
                        help="without --target-fps: at most S inputs per cycle")


def design_from_args(args: argparse.Namespace, out_dir=None):
    from qfab.flow import compile

    return compile(args.model, board=args.board, target_fps=args.target_fps, out_dir=out_dir,
                   max_pe=args.max_pe, max_simd=args.max_simd)


def run(args: argparse.Namespace) -> int:
    design = design_from_args(args, out_dir=args.output)
    p = design.plan
    print(f"{len(p.stages)} stages, initiation interval {p.ii_cycles} cycles "
          f"at {p.clock_hz / 1e6:g} MHz", file=sys.stderr)
    for name in ("accelerator.v", "manifest.json", "report.md"):
        print(design.out_dir / name)
    return 0
