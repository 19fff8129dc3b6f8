"""Compile time, stage by stage, of what `qfab compile` does: TFC_2W2A, the digits CNN, the
ResNet-8-sized model (bench/_resnet8.py) and the jet tagger stand-in at II 1, from ONNX to
Verilog, then the SoC half, and the whole `qfab compile` command on TFC_2W2A with and without
the SoC: a new model (its Verilog converted afresh; the SoC's model-independent part read from
the cache, as after any earlier compile), with a cold Verilog cache, and the same design
compiled again (its Verilog read from the cache). Times are CPU seconds of this process and
its children (the machine's other jobs disturb CPU time less than wall time); the cycle model
is the initiation interval `qfab compile` prints (two inferences through the handshake model),
run afresh (not read from the cycle cache on disk), and the stage-by-stage Verilog is
converted afresh."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TFC = Path("/work/shared/models/qonnx/TFC_2W2A.onnx")
DIGITS = ROOT / "examples" / "digits" / "digits_int8.onnx"
JET = ROOT / "bench" / "models" / "jet_tagger_standin.onnx"
_PYCACHE = Path(tempfile.gettempdir()) / "qfab-bench-pycache"


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the firmware build)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(fn):
    start = _cpu()
    value = fn()
    return value, _cpu() - start


def _cli(model: Path, *flags: str, cache: str = "new") -> str:
    """`qfab compile MODEL FLAGS` as the user runs it: CPU seconds of the whole command
    (imports, children) and wall seconds. Python's bytecode is kept (in a folder of this run:
    an installed package has it), warmed by a first run; the firmware build is cached by then.
    ``cache``: "new", a model compiled for the first time: its Verilog converted afresh, while
    what depends on no model (the SoC's core, bus, memories and peripherals) is read from a
    Verilog cache that another model's compile (the digits CNN's) filled; "cold", nothing
    read from the Verilog cache; "again", the same design compiled again (its Verilog read
    from the cache)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(_PYCACHE)
    with tempfile.TemporaryDirectory() as tmp:
        env["QFAB_CACHE_DIR"] = str(Path(tmp) / "cache")

        def compile_(path: Path, **extra: str) -> None:
            command = [sys.executable, "-m", "qfab.cli", "compile", str(path), *flags,
                       "-o", str(Path(tmp) / "out"), "--quiet"]
            subprocess.run(command, check=True, capture_output=True, env={**env, **extra})

        compile_(model, QFAB_VERILOG_CACHE="0")  # warm up, the Verilog cache left empty
        if cache == "new":
            compile_(DIGITS, QFAB_VERILOG_CACHE="1")
        elif cache == "again":
            compile_(model, QFAB_VERILOG_CACHE="1")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        compile_(model, QFAB_VERILOG_CACHE="0" if cache == "cold" else "1")
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    label = f"qfab compile {model.name} {' '.join(flags)}"
    return f"{label:<36} {cache:<6} {cpu:6.2f} s CPU {wall:6.2f} s wall"


def _row(name: str, path: Path, **plan_args) -> str:
    from qfab.compiler.backend.design import Design
    from qfab.compiler.backend.firmware import build_soc
    from qfab.compiler.backend.plan import plan
    from qfab.cost_model.timing import steady_ii

    from qfab.api import lower_model

    graph, t_lower = _timed(lambda: lower_model(path))
    hw, t_plan = _timed(lambda: plan(graph, **plan_args))
    _, t_cycles = _timed(lambda: steady_ii(hw))
    design = Design(graph, hw, str(path))
    text, t_verilog = _timed(design.verilog)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            _, t_soc = _timed(lambda: build_soc(design, Path(tmp), text))
            soc = f"{t_soc:>7.2f}s"
        except Exception as e:  # a design the firmware cannot drive: its accelerator alone
            soc = f"{'-':>8}   ({str(e)[:40]})"
    total = t_lower + t_plan + t_cycles + t_verilog
    return (f"{name:<16} {t_lower:>12.2f}s {t_plan:>7.2f}s {t_cycles:>9.2f}s "
            f"{t_verilog:>8.2f}s {total:>7.2f}s {soc}   ({len(text) // 1024} KiB of Verilog, "
            f"{hw.ii_cycles} cycles an inference)")


def run() -> list[str]:
    # The cycle model run and the Verilog converted, not their results read from disk.
    saved = {name: os.environ.get(name) for name in ("QFAB_CYCLE_CACHE", "QFAB_VERILOG_CACHE")}
    os.environ.update(dict.fromkeys(saved, "0"))
    try:
        return _rows()
    finally:
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


def _rows() -> list[str]:
    from bench._resnet8 import write_resnet8

    lines = [f"{'model':<16} {'import+lower':>13} {'plan':>8} {'cycle model':>10} "
             f"{'verilog':>9} {'total':>8} {'+ SoC':>8}",
             "(+ SoC: firmware and soc.v around the accelerator's Verilog, which `qfab compile` "
             "adds; the first zig build also compiles its runtime)"]
    lines.append(_row("TFC_2W2A", TFC))
    lines.append(_row("digits_int8", DIGITS))
    with tempfile.TemporaryDirectory() as tmp:
        lines.append(_row("ResNet-8-sized", write_resnet8(Path(tmp) / "resnet8_int8.onnx")))
    lines.append(_row("jet tagger II 1", JET, budget_cycles=1))
    lines += ["", _cli(TFC, "--no-soc"), _cli(TFC), _cli(TFC, cache="cold"),
              _cli(TFC, "--no-soc", cache="again"), _cli(TFC, cache="again")]
    return lines


if __name__ == "__main__":
    print("\n".join(run()))
