"""`qfab cache`: where qfab keeps what it built, how big it is, and clearing it."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from qfab.cache_paths import cache_root
from qfab.errors import QfabError

HELP = "show the cached Verilator models, Yosys and place-and-route results, or clear them"
# A temporary folder of a build still running in another process: left alone by --clear.
RUNNING_SECONDS = 600


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clear", nargs="*", metavar="PART",
                        help="remove the cached entries of these parts (all without a PART): "
                             "verilator, soc, rv32-soc, synth, cycles, verilog, yosys, pnr, crash")
    parser.add_argument("--json", action="store_true",
                        help='print one JSON object {"cache": {"parts": [{name, path, bytes, '
                             'entries}], "bytes", "verilator_cap_bytes", "cleared"}}')


def parts() -> dict[str, tuple[Path, str, str]]:
    """Each part of the cache: its folder, the entries' glob pattern and what it holds."""
    from qfab.compiler.backend import verilog_cache
    from qfab.cost_model import pnr, timing_cache, yosys
    from qfab.crash import crash_dir
    from qfab.hw import _yosys
    from qfab.sim import verilator_build

    return {
        "verilator": (verilator_build.cache_root(), "*", "co-simulation models (qfab sim)"),
        "soc": (cache_root() / "soc-designs", "*", "SoC models (qfab sim --soc)"),
        "rv32-soc": (cache_root() / "rv32-soc", "*", "the SoC qfab run-elf runs"),
        "synth": (yosys.cache_dir(), "*", "Yosys results (qfab synth, calibration)"),
        "cycles": (timing_cache.cache_dir(), "*.pickle", "the cycle model's figures of large "
                   "designs (qfab compile)"),
        "verilog": (verilog_cache.cache_dir(), "*.v", "generated Verilog of the accelerators and "
                    "SoCs built (qfab compile, sim, synth)"),
        "yosys": (_yosys.cache_dir(), "*.cwasm", "Yosys's machine code, for writing Verilog "
                  "(qfab compile)"),
        "pnr": (pnr.cache_dir(), "*", "place-and-route builds (qfab build)"),
        "crash": (crash_dir(), "crash-*.txt", "tracebacks of qfab's own errors"),
    }


def _entries(folder: Path, pattern: str) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(pattern) if p.suffix != ".lock")


def _size(path: Path) -> int:
    from qfab.sim.verilator_build import folder_size

    return folder_size(path) if path.is_dir() else path.stat().st_size


def _running(path: Path) -> bool:
    temporary = ".tmp" in path.name or path.name.startswith("build-")
    return temporary and time.time() - path.stat().st_mtime < RUNNING_SECONDS


def _clear(folder: Path, pattern: str) -> int:
    removed = 0
    for entry in _entries(folder, pattern):
        if _running(entry):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed


def _human(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def run(args: argparse.Namespace) -> int:
    from qfab.sim.verilator_build import cache_cap

    known = parts()
    cleared = {}
    if args.clear is not None:
        unknown = [p for p in args.clear if p not in known]
        if unknown:
            raise QfabError(f"no cache part {unknown[0]!r}; the parts: {', '.join(known)}")
        for name in args.clear or known:
            folder, pattern, _ = known[name]
            cleared[name] = _clear(folder, pattern)
    rows = []
    for name, (folder, pattern, what) in known.items():
        entries = _entries(folder, pattern)
        rows.append({"name": name, "path": str(folder), "what": what,
                     "bytes": sum(_size(e) for e in entries), "entries": len(entries)})
    total, cap = sum(r["bytes"] for r in rows), cache_cap()
    if args.json:
        print(json.dumps({"cache": {"parts": rows, "bytes": total,
                                    "verilator_cap_bytes": cap, "cleared": cleared}}))
        return 0
    for name, n in cleared.items():
        print(f"cleared {name}: {n} entr{'y' if n == 1 else 'ies'} removed")
    print(f"{'part':<10} {'size':>9} {'entries':>8}  folder (what)")
    for r in rows:
        print(f"{r['name']:<10} {_human(r['bytes']):>9} {r['entries']:>8}  {r['path']} "
              f"({r['what']})")
    print(f"{'total':<10} {_human(total):>9}; the Verilator models are capped at "
          f"{_human(cap)} ($QFAB_VERILATOR_CACHE_MB), the least recently used dropped first")
    return 0
