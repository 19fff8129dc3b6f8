"""`qfab estimate`: the cost model's resources and cycles for a model on a board."""

from __future__ import annotations

import argparse
import json

HELP = "estimate LUT, FF, DSP, BRAM and cycles of MODEL's accelerator on a board"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from qfab.commands.compile import MODEL_HELP, add_design_arguments

    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    add_design_arguments(parser)
    parser.add_argument("--json", action="store_true",
                        help='print one JSON object {"estimate": {...}} (keys: lut, ff, dsp, '
                             "bram, bram_unit, cycles, latency_cycles, ii_cycles, throughput, "
                             "fits, utilization, stages)")


def run(args: argparse.Namespace) -> int:
    from qfab.commands.compile import design_from_args, warn_if_too_big
    from qfab.cost_model.estimate import estimate

    design = design_from_args(args)
    est = estimate(design, args.board)
    warn_if_too_big(design, est)
    if args.json:
        print(json.dumps({"estimate": est.as_dict()}, indent=2))
    else:
        print(est.report(), end="")
    return 0
