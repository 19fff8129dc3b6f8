"""Shared fixtures: the one cached Verilator build of the SoC and a firmware assembler."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from qfab.sim.run_elf import build_model

HERE = Path(__file__).parent
FIRMWARE = HERE.parents[1] / "firmware"
ZIG_FLAGS = ["-target", "riscv32-freestanding-none", "-mcpu=generic_rv32"]


@pytest.fixture(scope="session")
def soc_model() -> Path:
    """The harness executable (built once, then cached across sessions)."""
    return build_model()


@pytest.fixture(scope="session")
def assemble(tmp_path_factory):
    """Assemble and link a .S file with firmware/link_ram.ld into an ELF; returns its path."""
    out = tmp_path_factory.mktemp("elf")

    def build(source: Path) -> Path:
        elf = out / (source.stem + ".elf")
        cmd = [sys.executable, "-m", "ziglang", "cc", *ZIG_FLAGS, "-nostdlib",
               "-T", str(FIRMWARE / "link_ram.ld"), "-I", str(HERE / "programs"),
               "-I", str(FIRMWARE / "include"),
               str(source), "-o", str(elf)]
        subprocess.run(cmd, check=True, capture_output=True)
        return elf

    return build
