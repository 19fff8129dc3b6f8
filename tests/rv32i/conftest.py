"""Shared fixtures: the one cached Verilator build of the SoC and a firmware assembler."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from qfab.sim.run_elf import build_model

HERE = Path(__file__).parent
FIRMWARE = HERE.parents[1] / "firmware"
MCPU = {"rv32i": "-mcpu=generic_rv32", "rv32im": "-mcpu=generic_rv32+m"}


@pytest.fixture(scope="session")
def soc_model() -> Path:
    """The harness executable (built once, then cached across sessions)."""
    return build_model()


@pytest.fixture(scope="session")
def assemble(tmp_path_factory):
    """Assemble and link a .S file with firmware/link_ram.ld into an ELF; returns its path."""
    out = tmp_path_factory.mktemp("elf")

    def build(source: Path, isa: str = "rv32i") -> Path:
        elf = out / f"{source.stem}-{isa}.elf"
        cmd = [sys.executable, "-m", "ziglang", "cc", "-target", "riscv32-freestanding-none",
               MCPU[isa], "-nostdlib",
               "-T", str(FIRMWARE / "link_ram.ld"), "-I", str(HERE / "programs"),
               "-I", str(FIRMWARE / "include"),
               str(source), "-o", str(elf)]
        subprocess.run(cmd, check=True, capture_output=True)
        return elf

    return build
