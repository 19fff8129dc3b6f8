"""`qfab sim`: co-simulate the accelerator in Verilator and compare it with the reference."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from qfab.commands.compile import MODEL_HELP, add_design_arguments, design_from_args

HELP = "co-simulate MODEL's accelerator in Verilator, bit for bit against the reference"
EPILOG = ("Exit status 1 when an output code differs from the reference (with --soc, or the "
          "firmware's argmax from the reference's).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    parser.add_argument("--input", metavar="IN",
                        help=".npy, .npz or folder of input_N.pb (default: seeded random "
                             "inputs, uniform in [0, 1) for float inputs)")
    parser.add_argument("--batch", type=int, default=1, metavar="N",
                        help="random inputs: how many inferences (default 1)")
    parser.add_argument("--json", action="store_true",
                        help='print one JSON object {"sim": {...}} (keys: bit_exact, cycles, '
                             "latency_cycles, ii_cycles, stages, mismatches, first_mismatch, "
                             "clock_hz, throughput_fps, model_cycles, ...; see the README)")
    parser.add_argument("--waves", action="store_true",
                        help="write a VCD trace of the accelerator (its path is printed)")
    parser.add_argument("--soc", action="store_true",
                        help="run the whole SoC: the firmware on the RV32I core streams the "
                             "inputs from RAM through the accelerator and computes each "
                             "image's argmax")
    add_design_arguments(parser)


def random_inputs(graph, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for name in graph.inputs:
        t = graph.tensors[name]
        shape = (batch,) + tuple(t.shape[1:])
        if t.is_float:
            feeds[name] = rng.uniform(0, 1, shape).astype(np.float32)
        else:
            feeds[name] = rng.integers(t.fmt.fixed_min, t.fmt.fixed_max + 1, shape)
    return feeds


def run(args: argparse.Namespace) -> int:
    from qfab.api import load_inputs
    from qfab.flow import simulate

    design = design_from_args(args)
    inputs = (load_inputs(args.input, design.graph) if args.input
              else random_inputs(design.graph, args.batch))
    if not args.json:
        print(f"simulating {args.model}: {len(design.plan.stages)} stages "
              "(the first run builds the Verilator model; later runs reuse it)",
              file=sys.stderr, flush=True)
    res = simulate(design, inputs, waves=args.waves, soc=args.soc)
    clock = design.plan.clock_hz
    summary = res.summary()
    _add_model_cycles(design, res, summary)
    if args.soc:
        summary["throughput_fps"] = clock * len(res.argmax) / res.accel_cycles
    elif res.ii_cycles:
        summary["throughput_fps"] = clock / res.ii_cycles
    summary["clock_hz"] = clock
    if args.waves and res.cosim is not None:
        summary["waves"] = str(res.cosim.wave_path)
    if args.json:
        print(json.dumps({"sim": summary}, default=float))
    elif args.soc:
        _print_soc(design, res, clock, summary)
    else:
        _print(design, res, clock, summary)
    ok = res.bit_exact and (not args.soc or res.argmax_matches)
    return 0 if ok else 1


def _add_model_cycles(design, res, summary: dict) -> None:
    """The cycle model's figures for this run beside the measured ones, stage by stage."""
    from qfab.cost_model.timing import plan_timing

    timing = plan_timing(design.plan, batch=res.hw_codes.shape[0], exact=True)
    for s, t in zip(summary["stages"], timing.stages, strict=True):
        s.update(model_cycles=t.active_cycles, steady_cycles=t.steady_cycles,
                 fill_cycles=t.fill_cycles)
    summary.update(model_latency_cycles=timing.latency_cycles, model_cycles=timing.cycles)


def _print_stages(design, summary: dict, batch: int) -> None:
    """Each stage's active cycles in the run beside the cycle model's for the same batch."""
    print(f"{'stage':<32} {'op':<10} {'cycles':>9} {'model':>9}   = {batch} x steady + fill")
    for s, stage in zip(summary["stages"], design.plan.stages, strict=False):
        print(f"{s['name']:<32} {stage.op:<10} {s['cycles']:>9} {s['model_cycles']:>9}   "
              f"= {batch} x {s['steady_cycles']} + {s['fill_cycles']}")


def _print(design, res, clock: float, summary: dict) -> None:
    batch = res.hw_codes.shape[0]
    _print_stages(design, summary, batch)
    print(f"inferences: {batch}   total cycles: {res.cycles} (model {summary['model_cycles']})"
          f"   latency: {res.latency_cycles} cycles (model {summary['model_latency_cycles']}; "
          f"{res.latency_cycles / clock * 1e6:.2f} us at {clock / 1e6:g} MHz)")
    ii = res.ii_cycles or design.ii_cycles
    label = "measured" if res.ii_cycles else "cycle model"
    print(f"initiation interval: {ii:g} cycles ({label}); throughput {clock / ii:,.0f} "
          "inferences/s")
    if res.cosim is not None and res.cosim.wave_path:
        print(f"waves: {res.cosim.wave_path}")
    _print_verdict(res)


def _print_soc(design, res, clock: float, summary: dict) -> None:
    batch = len(res.argmax)
    _print_stages(design, summary, batch)
    print("firmware console:")
    for line in res.console.splitlines():
        print(f"  | {line}")
    print(f"inferences: {batch}   SoC cycles: {res.cycles} from reset (accelerator job "
          f"{res.accel_cycles}; control {res.control_cycles}: boot, job set-up, argmax "
          f"{res.argmax_cycles}, " + (f"tail {res.tail_cycles}, " if res.tail_cycles else "")
          + "report)")
    print(f"latency: {res.latency_cycles} cycles from the job's start to its first output "
          f"({res.latency_cycles / clock * 1e6:.2f} us at {clock / 1e6:g} MHz); "
          f"{res.accel_cycles / batch:,.0f} accelerator cycles per inference")
    print(f"firmware argmax of the output codes: {' '.join(map(str, res.argmax[:16]))}"
          f"{' ...' if batch > 16 else ''} "
          f"({'matches' if res.argmax_matches else 'DIFFERS from'} the reference)")
    _print_verdict(res)


def _print_verdict(res) -> None:
    if res.bit_exact:
        print(f"verdict: BIT-EXACT ({res.checked_codes} output codes match the reference)")
    else:
        print(f"verdict: MISMATCH in {res.mismatches} of {res.checked_codes} output codes; "
              f"{res.first_mismatch}")
