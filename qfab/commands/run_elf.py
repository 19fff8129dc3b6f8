"""`qfab run-elf`: run an RV32I program on the SoC in Verilator."""

from __future__ import annotations

import argparse
import sys

from qfab.errors import QfabError

HELP = "run an RV32I program on the SoC in Verilator; exit with the status it wrote"

EPILOG = """\
The program ends by storing to the sysctl EXIT register (the exit status is the stored
value when it is 0..255, else 1), or, when the ELF has a `tohost` symbol, by a non-zero
store there: 1 passes (exit 0), (n << 1) | 1 is failure n (exit 1), as is any other value.
Console output goes to stdout. Reaching --max-cycles first is an error (exit 2), as is an
ELF that is not a little-endian RV32 executable or places code outside ROM and RAM.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("elf", metavar="PROG.elf", help="RV32I ELF executable")
    parser.add_argument("--max-cycles", type=int, default=100_000_000, metavar="N",
                        help="stop with an error after N cycles (default: %(default)s)")
    parser.add_argument("--isa", choices=["rv32i", "rv32im"], default="rv32i",
                        help="the core's instruction set (default: %(default)s)")
    parser.add_argument("--iss", action="store_true",
                        help="run on the Python instruction-set simulator instead of "
                             "Verilator (slower; no build; same cycle count)")
    parser.add_argument("--signature", metavar="FILE",
                        help="write the words from begin_signature to end_signature, "
                             "one hex word a line")


def run(args: argparse.Namespace) -> int:
    from qfab.sim.run_elf import run_elf

    sys.stdout.flush()
    result = run_elf(args.elf, max_cycles=args.max_cycles, signature=args.signature,
                     isa=args.isa, engine="iss" if args.iss else "verilator")
    if result.reason == "timeout":
        raise QfabError(f"{args.elf}: no exit after --max-cycles {args.max_cycles} cycles")
    if result.reason == "tohost" and result.code != 1:
        print(f"qfab run-elf: {args.elf}: test {result.code >> 1} failed (tohost "
              f"{result.code:#x})", file=sys.stderr)
    return result.exit_status
