"""The core in Verilator against the ISS on random instruction streams: same registers,
memory, trap log and cycle count after every program."""

from __future__ import annotations

import pytest
from qfab.sim.elf import ElfImage, read_elf, write_elf
from qfab.sim.iss import Iss
from qfab.sim.run_elf import run_image
from rv32_random import COMPARE_WORDS, DATA, random_program

CASES = [("rv32i", seed) for seed in range(100)] + [("rv32im", seed) for seed in range(40)]


def _iss_words(iss: Iss, addr: int, words: int) -> tuple[int, ...]:
    return tuple(iss.read_word(addr + 4 * i) for i in range(words))


@pytest.mark.parametrize(("isa", "seed"), CASES)
def test_random_program_matches_iss(isa, seed, soc_model, tmp_path):
    entry, segments = random_program(seed, m_extension=isa == "rv32im")
    path = tmp_path / f"random{seed}.elf"
    write_elf(path, entry=entry, segments=segments)
    image: ElfImage = read_elf(path)

    iss = Iss(m_extension=isa == "rv32im")
    iss.load(image)
    expected = iss.run(100_000)
    assert expected.reason == "exit", "the generated program must end"

    got = run_image(image, max_cycles=1_000_000, dumps=((DATA, COMPARE_WORDS),), isa=isa)
    assert (got.reason, got.code) == ("exit", 0)
    mem = _iss_words(iss, DATA, COMPARE_WORDS)
    diff = [(hex(DATA + 4 * i), hex(a), hex(b))
            for i, (a, b) in enumerate(zip(got.dumps[0], mem, strict=True)) if a != b]
    assert not diff, f"core != ISS at (addr, core, iss): {diff[:8]}"
    assert got.cycles == expected.cycles
