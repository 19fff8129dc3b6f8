"""qfab: compile quantized ONNX models to bit-exact FPGA dataflow accelerators."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from qfab.crash import report_crash
from qfab.errors import QfabError

# Each command is a module in qfab/commands with HELP, add_arguments(parser) and run(args).
COMMANDS = ["inspect", "reference", "compile", "sim", "estimate", "synth", "build", "sweep",
            "search", "run-elf", "cache"]


def _module(name: str):
    return importlib.import_module(f"qfab.commands.{name.replace('-', '_')}")


class _Terminated(BaseException):
    """SIGTERM as an exception, so that a killed command's temporaries are removed as an
    interrupted one's are (SIGKILL's are removed by the next run into the same target)."""


def _terminate(signum, frame):
    raise _Terminated


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, exit status 2, like every other user error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


EPILOG = """\
In a checkout, try the built-in example: qfab sim examples/digits/digits_int8.onnx
co-simulates it against the reference; inspect, estimate and compile -o DIR take the same
MODEL. qfab COMMAND --help documents each command's flags.

Exit status: 0 success; 1 the hardware and the reference disagree (or a program run on the
SoC failed); 2 a user error (a bad model, input, option or board), said in one line on stderr;
3 a bug in qfab: one line on stderr names the crash-*.txt file holding its traceback.
"""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of the command ``only`` alone: building every
    command's arguments imports what each needs (place and route's boards, say), a second
    of a one-second compile."""
    from qfab import __version__

    parser = _Parser(prog="qfab", description=__doc__, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"qfab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS if only is None else [only]:
        mod = _module(name)
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        if not any("--quiet" in a.option_strings for a in p._actions):
            p.add_argument("--quiet", action="store_true",
                           help="no progress lines on stderr for long steps")
        p.set_defaults(run=mod.run)
    return parser


def _say(command: str):
    def say(line: str) -> None:
        print(f"qfab {command}: {line}", file=sys.stderr, flush=True)
    return say


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit status: 0 success, 1 the hardware disagrees with the reference
    (or a program run on the SoC failed), 2 a user error (one line, from a QfabError or the
    argument parser), 3 a bug in qfab (one line naming the file its traceback went to)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        only = argv[0] if argv and argv[0] in COMMANDS else None
        args = build_parser(only).parse_args(argv)  # --help and usage errors exit here, 0 or 2
    except Exception as e:  # a command module that does not import
        return report_crash(argv[0] if argv else "", e, argv)
    from qfab.progress import progress_to, silenced

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with progress_to(False if args.quiet or silenced() else _say(args.command)):
            return args.run(args)
    except QfabError as e:
        print(f"qfab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"qfab {args.command}: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"qfab {args.command}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except BrokenPipeError:
        # The reader of stdout went away (`qfab inspect MODEL | head`): not a bug of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (Exception, SystemExit) as e:  # commands return their status; they never exit
        return report_crash(args.command, e, argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
