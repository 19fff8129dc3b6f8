"""Cycles per instruction of each class, measured on the core with mcycle, against the
documented figures (Rv32iCore.cycles_per_class) and the ISS timing model."""

from __future__ import annotations

import rv32_asm as A
from qfab.hw.rv32i.core import CYCLES_PER_CLASS
from qfab.hw.soc.memory_map import region
from qfab.sim.elf import Segment, read_elf, write_elf
from qfab.sim.iss import Iss
from qfab.sim.run_elf import run_image

RAM = region("ram").base
DATA = RAM + 0x1_0000
REPEAT = 16
HANDLER = RAM + 0x8000

# One instruction (or a list run once per repeat) of each class; x20 points at DATA.
CLASS_BODY = {
    "alu": [A.r_type("add", 5, 6, 7)],
    "branch": [A.branch("beq", 0, 0, 4)],            # taken, to the next instruction
    "jump": [A.jal(1, 4)],
    "csr": [A.csr("csrrs", 5, 0, 0x340)],
    "load": [A.i_type("lw", 5, 20, 0)],
    "store": [A.store("sw", 5, 20, 0)],
    "trap": [A.ECALL],
    "mul": [A.r_type("mulh", 5, 6, 7)],
    "div": [A.r_type("rem", 5, 6, 7)],
}
M_CLASSES = ("mul", "div")


def _program(body: list[int]) -> tuple[Segment, ...]:
    # The trap handler returns to mepc + 4; the test subtracts its fixed cost.
    code = A.li(20, DATA) + A.li(5, HANDLER) + [A.csr("csrrw", 0, 5, 0x305)]
    code += [A.csr("csrrs", 10, 0, 0xB00)] + body * REPEAT + [A.csr("csrrs", 11, 0, 0xB00)]
    code += [A.r_type("sub", 12, 11, 10), A.store("sw", 12, 20, 4)]
    code += A.li(29, 0x4000_0004) + [A.store("sw", 0, 29, 0), A.jal(0, 0)]
    handler = [A.csr("csrrs", 29, 0, 0x341), A.i_type("addi", 29, 29, 4),
               A.csr("csrrw", 0, 29, 0x341), A.MRET]
    words = b"".join(w.to_bytes(4, "little") for w in code)
    return (Segment(RAM, words),
            Segment(HANDLER, b"".join(w.to_bytes(4, "little") for w in handler)),
            Segment(DATA, bytes(8)))


def _measure(tmp_path, name: str, body: list[int], isa: str) -> tuple[int, int]:
    path = tmp_path / f"{name}.elf"
    write_elf(path, entry=RAM, segments=_program(body))
    image = read_elf(path)
    core = run_image(image, max_cycles=100_000, dumps=((DATA + 4, 1),), isa=isa)
    iss = Iss(m_extension=isa == "rv32im")
    iss.load(image)
    iss.run(10_000)
    return core.dumps[0][0], iss.read_word(DATA + 4)


def test_cycles_per_instruction_class(soc_model, tmp_path):
    base_core, base_iss = _measure(tmp_path, "empty", [], "rv32i")
    # csrr, addi, csrw, mret: three CSR-class instructions and mret, as long as an ALU one.
    handler_cycles = 4 * CYCLES_PER_CLASS["alu"]
    measured = {}
    for name, body in CLASS_BODY.items():
        core, iss = _measure(tmp_path, name, body, "rv32im" if name in M_CLASSES else "rv32i")
        assert core == iss, f"{name}: core {core} cycles, ISS {iss}"
        per = (core - base_core) / REPEAT
        if name == "trap":
            per -= handler_cycles
        measured[name] = per
    assert measured == CYCLES_PER_CLASS
