"""Directed programs (programs/*.S): every RV32I instruction with its corner cases, the
CSRs and every trap, self-checking, run on the core in Verilator and on the ISS."""

from __future__ import annotations

from pathlib import Path

import pytest
from qfab.sim.elf import read_elf
from qfab.sim.iss import Iss
from qfab.sim.run_elf import run_elf

HERE = Path(__file__).parent
# muldiv.S needs the M extension; the other programs check that M instructions trap.
PROGRAMS = [(p, "rv32i") for p in sorted((HERE / "programs").glob("*.S"))
            if p.stem not in ("fail", "muldiv")] + [(HERE / "programs" / "muldiv.S", "rv32im")]


@pytest.mark.parametrize(("source", "isa"), PROGRAMS, ids=lambda p: getattr(p, "stem", p))
def test_program_passes_on_core_and_iss(source, isa, assemble, soc_model):
    elf = assemble(source, isa)
    core = run_elf(elf, max_cycles=200_000, isa=isa)
    iss = Iss(m_extension=isa == "rv32im")
    iss.load(read_elf(elf))
    ref = iss.run(100_000)
    assert (core.reason, core.code) == ("tohost", 1), f"core failed test {core.code >> 1}"
    assert (ref.reason, ref.code) == ("tohost", 1), f"ISS failed test {ref.code >> 1}"
    assert core.cycles == ref.cycles


def test_failing_program_reports_its_test_number(assemble, soc_model):
    elf = assemble(Path(__file__).parent / "programs" / "fail.S")
    result = run_elf(elf, max_cycles=10_000)
    assert (result.reason, result.code >> 1, result.exit_status) == ("tohost", 7, 1)
