"""Drive mutants through `qfab inspect`, `reference`, `estimate` and `compile --no-soc`, in
process (``qfab.cli.main``), and classify each run.

- ``ok``: exit 0 on a model not known to be invalid;
- ``user_error``: exit 2 with one line ``qfab CMD: error: ...`` on stderr;
- ``silent_accept`` (a failure): exit 0 on a model or input known to be invalid;
- ``crash`` (a failure): an exception escaping the command, exit 3 (the CLI's report of
  one), any other exit status, or an error message that is not one line.

    python tests/fuzz/fuzz_run.py -n 10000 --seed 1     # what `make fuzz` runs
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import multiprocessing
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from queue import Empty

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1])]

from fuzz_mutate import Mutant, mutants  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("inspect", "reference", "estimate", "compile")
FAILURES = ("crash", "silent_accept")
# Commands that do not read the input file: their outcome on a model is computed once.
MODEL_ONLY = ("inspect", "estimate", "compile")


class _Timeout(Exception):
    pass


@dataclass
class Outcome:
    command: str
    status: str
    detail: str  # the error line, or where the crash was raised
    trace: str = ""  # a crash's traceback


@dataclass
class Report:
    counts: Counter = field(default_factory=Counter)  # (command, status) -> runs
    crashes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    traces: dict[str, str] = field(default_factory=dict)
    silent: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    # Refusals of mutants not invalid by construction (a byte flip, an in-range zero point):
    # not failures, but where to look for a valid model qfab refuses.
    refused: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    mutants: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    def add(self, mutant: Mutant, outcomes: list[Outcome]) -> None:
        self.mutants += 1
        for o in outcomes:
            self.counts[o.command, o.status] += 1
            if o.status == "crash":
                self.crashes[o.detail].append(f"{o.command} {mutant.label}")
                self.traces.setdefault(o.detail, o.trace)
            elif o.status == "silent_accept":
                self.silent[mutant.kind.split(":")[0]].append(f"{o.command} {mutant.label}")
            elif o.status == "user_error" and not mutant.invalid and not mutant.input_invalid:
                self.refused[mutant.kind.split(":")[0].split("@")[0]].append(
                    f"{o.command} {mutant.label}: {o.detail}")

    def total(self, status: str) -> int:
        return sum(n for (_, s), n in self.counts.items() if s == status)

    def summary(self) -> dict:
        return {"mutants": self.mutants, "runs": sum(self.counts.values()),
                "seconds": round(self.seconds, 1), "interrupted": self.interrupted,
                **{s: self.total(s) for s in ("ok", "user_error", *FAILURES)},
                "distinct_crashes": len(self.crashes),
                "by_command": {c: {s: n for (cc, s), n in sorted(self.counts.items()) if cc == c}
                               for c in COMMANDS},
                "crashes": {k: v[:3] for k, v in self.crashes.items()},
                "silent_accepts": {k: v[:3] for k, v in self.silent.items()},
                "refused_not_invalid": {k: {"runs": len(v), "examples": v[:5]}
                                        for k, v in sorted(self.refused.items())}}

    def lines(self) -> list[str]:
        s = self.summary()
        out = [f"{s['mutants']} mutants, {s['runs']} runs in {s['seconds']} s: "
               f"{s['crash']} crashes ({s['distinct_crashes']} distinct), "
               f"{s['silent_accept']} silent accepts, {s['user_error']} user errors, "
               f"{s['ok']} ok"]
        for where, examples in self.crashes.items():
            out.append(f"  crash {where}  ({len(examples)}x, e.g. {examples[0]})")
        for kind, examples in self.silent.items():
            out.append(f"  silent accept {kind}  ({len(examples)}x, e.g. {examples[0]})")
        return out


def _where(exc: BaseException) -> str:
    """The exception type and the innermost frame in qfab's own code: one crash, however
    many mutants reach it."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f.filename.startswith(str(ROOT)) and "/tests/" not in f.filename]
    f = frames[-1] if frames else traceback.extract_tb(exc.__traceback__)[-1]
    path = Path(f.filename)
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    return f"{type(exc).__name__} in {shown}:{f.name}"


def _stop(signum, frame):
    raise KeyboardInterrupt("terminated")


def _on_alarm(signum, frame):
    raise _Timeout()


def run_command(argv: list[str], timeout: int) -> tuple[int | None, str, tuple | None]:
    """(exit status, stderr, (crash site, traceback)) of ``qfab ARGV`` in this process. The
    exception the CLI's last-resort handler would report (exit 3) is kept here instead of
    being written to a crash file."""
    import qfab.cli as cli

    err = io.StringIO()
    caught: list[BaseException] = []
    report_crash = cli.report_crash

    def keep(command, exc, args):
        caught.append(exc)
        return 3

    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(timeout)
    cli.report_crash = keep
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                code = cli.main(argv)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 2
            except (KeyboardInterrupt, GeneratorExit):
                raise
            except BaseException as e:  # noqa: BLE001 (any escape is what we look for)
                caught.append(e)
                code = None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        cli.report_crash = report_crash
    if code == 128 + signal.SIGTERM and not caught:
        raise KeyboardInterrupt("terminated")  # the campaign was told to stop, not a crash
    if caught:
        exc = caught[0]
        if isinstance(exc, _Timeout):
            return None, err.getvalue(), (f"timeout after {timeout} s", "")
        return None, err.getvalue(), (_where(exc), "".join(traceback.format_exception(exc)))
    return code, err.getvalue(), None


def classify(command: str, code: int | None, stderr: str, crash: tuple | None,
             invalid: bool) -> Outcome:
    if crash is not None:
        return Outcome(command, "crash", *crash)
    if code == 0:
        return Outcome(command, "silent_accept" if invalid else "ok", "")
    lines = stderr.strip().splitlines()
    if code == 2 and len(lines) == 1 and lines[0].startswith(f"qfab {command}: error: "):
        return Outcome(command, "user_error", lines[0])
    if code == 3:
        site = re.search(r"(\w+Error|\w+Exception)", stderr)
        return Outcome(command, "crash", f"exit 3: {site.group(1) if site else stderr[:80]}")
    return Outcome(command, "crash", f"exit {code}: {(lines or [''])[-1][:100]}")


class Runner:
    """Runs mutants in a scratch folder; remembers model-only outcomes by model hash."""

    def __init__(self, commands=COMMANDS, timeout: int = 120):
        self.commands = commands
        self.timeout = timeout
        self.work = Path(tempfile.mkdtemp(prefix="qfab-fuzz-"))
        self._seen: dict[tuple[str, str], Outcome] = {}

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def argv(self, command: str, model: Path, inputs: Path) -> list[str]:
        out = self.work / "out"
        return {"inspect": ["inspect", str(model)],
                "reference": ["reference", str(model), "--input", str(inputs), "--output",
                              str(self.work / "out.npz")],
                "estimate": ["estimate", str(model)],
                "compile": ["compile", str(model), "--no-soc", "-o", str(out)]}[command]

    def run(self, mutant: Mutant) -> list[Outcome]:
        model, inputs = self.work / "model.onnx", self.work / "in.npz"
        model.write_bytes(mutant.model)
        inputs.write_bytes(mutant.inputs)
        key = hashlib.sha256(mutant.model).hexdigest()
        outcomes = []
        for command in self.commands:
            if command in MODEL_ONLY and (command, key) in self._seen:
                outcomes.append(self._seen[command, key])
                continue
            code, stderr, crash = run_command(self.argv(command, model, inputs), self.timeout)
            invalid = mutant.invalid or (command == "reference" and mutant.input_invalid)
            outcome = classify(command, code, stderr, crash, invalid)
            outcomes.append(outcome)
            if command in MODEL_ONLY:
                self._seen[command, key] = outcome
            shutil.rmtree(self.work / "out", ignore_errors=True)
            (self.work / "out.npz").unlink(missing_ok=True)
        return outcomes


def fuzz(n: int, seed: int, *, seconds: float | None = None, commands=COMMANDS,
         progress=None, jobs: int = 1, timeout: int = 120) -> Report:
    """Run up to ``n`` mutants of ``seed`` (stopping after ``seconds`` when given), in
    ``jobs`` processes that take every ``jobs``-th mutant each; a command running longer than
    ``timeout`` seconds is a crash (a hang)."""
    report = Report()
    start = time.monotonic()
    if jobs == 1:
        results = _shard(n, seed, seconds, commands, timeout, 0, 1)
    else:
        results = _parallel(n, seed, seconds, commands, timeout, jobs)
    try:
        for mutant, outcomes in results:
            report.add(mutant, outcomes)
            report.seconds = time.monotonic() - start
            if progress is not None:
                progress(report)
    except KeyboardInterrupt:  # SIGTERM or ^C: the summary of what ran
        report.interrupted = True
    report.seconds = time.monotonic() - start
    return report


def _shard(n: int, seed: int, seconds: float | None, commands, timeout: int, index: int,
           jobs: int):
    """(mutant, outcomes) of mutants index, index + jobs, ... of the first ``n``."""
    runner = Runner(commands, timeout)
    start = time.monotonic()
    try:
        for i, mutant in enumerate(mutants(n, seed)):
            if seconds is not None and time.monotonic() - start > seconds:
                break
            if i % jobs == index:
                yield mutant, runner.run(mutant)
    finally:
        runner.close()


def _worker(n, seed, seconds, commands, timeout, index, jobs, queue) -> None:
    with contextlib.suppress(KeyboardInterrupt):  # stopped: the parent reports what ran
        for mutant, outcomes in _shard(n, seed, seconds, commands, timeout, index, jobs):
            # The model bytes stay here: the report needs only the mutant's label and flags.
            queue.put((replace(mutant, model=b"", inputs=b""), outcomes))
    queue.put(None)


def _parallel(n: int, seed: int, seconds: float | None, commands, timeout: int, jobs: int):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_worker,
                               args=(n, seed, seconds, commands, timeout, i, jobs, queue))
               for i in range(jobs)]
    for w in workers:
        w.start()
    running = jobs
    try:
        while running:
            try:
                item = queue.get(timeout=10)
            except Empty:
                if not any(w.is_alive() for w in workers):
                    break  # a worker killed before it could say it was done
                continue
            if item is None:
                running -= 1
            else:
                yield item
    finally:
        for w in workers:  # done, or the campaign was stopped: stop them too
            if w.is_alive():
                w.terminate()
            w.join(timeout=10)
            if w.is_alive():
                w.kill()


def _import_all() -> None:
    """Import every qfab module now, so that the campaign runs the code it started with
    (handlers import some lazily) even if the checkout changes while it runs."""
    import importlib
    import pkgutil
    import tomllib

    # qfab's subpackages live in top-level folders (pyproject's package-dir).
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for name in config["tool"]["setuptools"]["package-dir"]:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, name + "."):
            with contextlib.suppress(Exception):  # a module needing an absent optional tool
                importlib.import_module(info.name)


def _commit() -> str:
    """The checkout's commit, with "+changes" when its tracked files differ from it."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True,
                              text=True).stdout.strip()

    head = git("rev-parse", "HEAD")
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--mutants", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, help="stop after this long")
    parser.add_argument("--timeout", type=int, default=120,
                        help="seconds a command may run before it counts as a hang (raise "
                             "it on a loaded machine)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="processes running mutants side by side (one a core)")
    parser.add_argument("--json", metavar="FILE", help="write the summary as JSON")
    parser.add_argument("--tracebacks", action="store_true",
                        help="print one traceback for each distinct crash")
    parser.add_argument("--memory-gb", type=float, default=8,
                        help="address-space limit, so a runaway allocation fails fast")
    args = parser.parse_args(argv)
    import resource

    signal.signal(signal.SIGTERM, _stop)
    limit = int(args.memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    told: set[str] = set()

    def progress(report: Report) -> None:
        for key, examples in [*report.crashes.items(), *report.silent.items()]:
            if key not in told:  # a new failure class, as soon as it is found
                told.add(key)
                print(f"  new: {key}  (e.g. {examples[0]})", file=sys.stderr, flush=True)
        if report.mutants % 100 == 0:
            print(report.lines()[0], file=sys.stderr, flush=True)

    commit = _commit()
    _import_all()
    report = fuzz(args.mutants, args.seed, seconds=args.seconds, progress=progress,
                  jobs=args.jobs, timeout=args.timeout)
    print("\n".join(report.lines()))
    if args.tracebacks:
        for where, trace in report.traces.items():
            print(f"\n==== {where}\n{trace}")
    if args.json:
        summary = {"commit": commit, "seed": args.seed, "jobs": args.jobs, **report.summary()}
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 1 if any(report.total(s) for s in FAILURES) else 0


if __name__ == "__main__":
    sys.exit(main())
