"""qfab: compile quantized ONNX models to bit-exact FPGA dataflow accelerators."""

from __future__ import annotations

import argparse
import importlib
import sys

from qfab.errors import QfabError

# Each command is a module in qfab/commands with HELP, add_arguments(parser) and run(args).
COMMANDS = ["inspect", "reference", "compile", "sim", "estimate", "synth", "sweep", "run-elf"]


def _module(name: str):
    return importlib.import_module(f"qfab.commands.{name.replace('-', '_')}")


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, exit status 2, like every other user error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qfab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = _module(name)
        except ModuleNotFoundError:
            continue  # not built yet
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except QfabError as e:
        print(f"qfab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qfab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
