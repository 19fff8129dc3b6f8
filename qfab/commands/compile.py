"""`qfab compile`: Verilog, manifest and report for a model."""

from __future__ import annotations

import argparse
import sys
from importlib.resources import files

from qfab.errors import QfabError

HELP = ("compile MODEL to a dataflow accelerator in DIR: its Verilog, the SoC with its "
        "firmware, manifest.json and report.md (the paths are printed)")
MODEL_HELP = "quantized ONNX model (QDQ, QOperator or QONNX)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="output folder (replaced whole only once the new design is "
                             "written; a folder that is not a qfab design is refused)")
    parser.add_argument("--no-soc", action="store_true",
                        help="the accelerator only: no firmware and no soc.v")
    parser.add_argument("--wrapper", choices=("axis", "axilite"),
                        help="axis: also write DIR/axis.v, the accelerator with AXI4-Stream "
                             "ports (top qfab_axis); axilite: DIR/axilite.v, the accelerator, "
                             "its RAM and streamer driven by a host over AXI4-Lite, without "
                             "the RV32I core (top qfab_axilite)")
    add_design_arguments(parser)


def add_input_format(parser: argparse.ArgumentParser) -> None:
    """The flag every command that reads a model takes."""
    parser.add_argument("--input-format", metavar="FMT",
                        help="number format of a float graph input the model does not "
                             "quantize (Keras/hls4ml exports): fixed<16,6> (hls4ml's "
                             "default), ap_fixed<W,I,AP_RND_CONV,AP_SAT>, int8:SCALE, uint8, "
                             "E4M3")


def _board_names() -> list[str]:
    # The files qfab.cost_model.boards reads, listed without importing the cost model.
    return sorted(f.name.removesuffix(".yaml") for f in files("qfab.boards").iterdir()
                  if f.name.endswith(".yaml"))


def add_design_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by the commands that build a design."""
    add_input_format(parser)
    parser.add_argument("--board", metavar="B",
                        help=f"{', '.join(_board_names())} or a board YAML file: sets the "
                             "clock, and without a target or cap the fastest design that fits "
                             "is built "
                             "(default: no board, 100 MHz, estimates on pynq-z2)")
    parser.add_argument("--target-fps", type=float, metavar="N",
                        help="fold each layer to the fewest multipliers meeting N inferences/s "
                             "at the board's clock")
    parser.add_argument("--target-ii", type=int, metavar="C",
                        help="fold each layer to the fewest multipliers meeting C cycles per "
                             "inference (1: fully unrolled, constants in logic)")
    parser.add_argument("--max-pe", type=int, metavar="P",
                        help="without a target: at most P output channels per cycle "
                             "(4 if only --max-simd is given; with neither cap, each layer "
                             "balanced to the others, or with --board the fastest design "
                             "the cost model fits on the board)")
    parser.add_argument("--max-simd", type=int, metavar="S",
                        help="without a target: at most S inputs per cycle (8 if only "
                             "--max-pe is given)")
    parser.add_argument("--folding", metavar="LAYER=PExSIMD,...",
                        help="a MAC layer's own folding, e.g. conv1=2x9,fc=1x1 (as qfab "
                             "search chooses); the other layers as the rest of the options "
                             "say")
    parser.add_argument("--max-utilization", type=float, metavar="F",
                        help="with --board and no speed or caps: at most F of any of the "
                             "board's resources (default 0.8: room to place and route)")
    parser.add_argument("--dsp-budget", type=int, metavar="N",
                        help="with --board and no speed or caps: at most N DSPs "
                             "(0: products in LUTs only)")
    parser.add_argument("--output-name", metavar="NAME", action="append",
                        help="build only the output NAME (repeat the flag or separate names "
                             "with commas for several; default: every output)")


def design_from_args(args: argparse.Namespace, out_dir=None, soc: bool = True):
    from qfab.flow import compile

    design = compile(args.model, board=args.board, target_fps=args.target_fps,
                     out_dir=out_dir, max_pe=args.max_pe, max_simd=args.max_simd,
                     output=args.output_name, soc=soc, input_format=args.input_format,
                     target_ii=args.target_ii, max_utilization=args.max_utilization,
                     dsp_budget=args.dsp_budget, layer_folding=parse_folding(args.folding))
    if design.missed_target():
        print(f"warning: {design.missed_target()}", file=sys.stderr)
    return design


def parse_folding(text: str | None) -> dict[str, tuple[int, int]] | None:
    """``conv1=2x9,fc=1x1`` -> {"conv1": (2, 9), "fc": (1, 1)}."""
    if not text:
        return None
    folding = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        pe, _, simd = value.partition("x")
        if not (name.strip() and pe.isdigit() and simd.isdigit()):
            raise QfabError(f"--folding {text!r}: expected LAYER=PExSIMD, not {part!r}")
        folding[name.strip()] = (int(pe), int(simd))
    return folding


def warn_if_too_big(design, estimate, see: str = "") -> None:
    """A warning line on stderr when ``estimate`` (the cost model's) says the design does
    not fit its board, naming the resources over."""
    if estimate.fits:
        return
    over = ", ".join(f"{k.upper()} {getattr(estimate, k)} ({u:.0%})"
                     for k, u in estimate.utilization.items() if u > 1)
    default = "" if design.board is not None else " (the default board; see --board)"
    print(f"warning: the design does not fit {estimate.board}{default} by the cost model: "
          f"{over} of the board{see}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from qfab.api import estimate
    from qfab.compiler.backend.design import LOWER_BOUND

    design = design_from_args(args, out_dir=args.output, soc=not args.no_soc)
    p = design.plan
    print(f"{len(p.stages)} stages, initiation interval {design.ii_cycles} cycles "
          f"at {p.clock_hz / 1e6:g} MHz (slowest stage {p.ii_cycles}"
          f"{'' if design.modeled_ii is not None else LOWER_BOUND})", file=sys.stderr)
    warn_if_too_big(design, estimate(design), see="; see report.md")
    if args.wrapper:
        from qfab.compiler.backend.axis import write_wrapper

        write_wrapper(design, design.out_dir, args.wrapper)
    if design.soc_error:
        print(f"no SoC: {design.soc_error}", file=sys.stderr)
    for name in design.files:
        print(design.out_dir / name)
    return 0
