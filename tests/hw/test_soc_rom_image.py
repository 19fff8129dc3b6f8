"""The SoC's platform is converted once with an empty ROM and a firmware image written into
its Verilog afterwards: the text must be exactly what converting it with that image gives."""

import random
import re

import pytest
from qfab.hw._verilog import convert
from qfab.hw.soc.accel_soc import soc_platform, soc_platform_signature
from qfab.hw.soc.memory import BANK_WORDS, with_init
from qfab.hw.soc.memory_map import MEMORY_MAP, region

NAME = "qfab_soc_platform"


@pytest.fixture(scope="module")
def converted():
    soc = soc_platform()
    return soc, convert(soc, name=NAME, emit_src=False)


@pytest.fixture(scope="module")
def empty(converted) -> str:
    return converted[1]


def test_an_image_written_in_equals_one_converted_in(empty):
    rng = random.Random(7)
    # Past the first bank, so every lane of two banks changes; a zero word and an all-ones one.
    image = (0, 0xFFFF_FFFF, *(rng.getrandbits(32) for _ in range(BANK_WORDS + 300)))
    patched = with_init(empty, f"{NAME}.rom", image)
    assert patched != empty
    assert patched == convert(soc_platform(rom_init=image), name=NAME, emit_src=False)
    # Written over an image, not only over zeros; the empty image gives the zeros back.
    assert with_init(patched, f"{NAME}.rom", ()) == empty


def test_a_full_rom_fits_and_a_larger_image_or_an_unknown_module_is_refused(empty):
    words = region("rom", MEMORY_MAP).size // 4
    with_init(empty, f"{NAME}.rom", [1] * words)
    with pytest.raises(ValueError, match="fewer than"):
        with_init(empty, f"{NAME}.rom", [1] * (words + 1))
    with pytest.raises(ValueError, match="no module"):
        with_init(empty, "qfab_soc.rom", [1])
    with pytest.raises(ValueError, match="0..2"):
        with_init(empty, f"{NAME}.rom", [1 << 32])


def test_the_signature_is_the_platforms(converted):
    def ports(signature):
        return [(path, member.flow, member.shape) for path, member
                in signature.members.flatten() if member.is_port]

    assert ports(soc_platform_signature()) == ports(converted[0].signature)
    assert {"accel_bus", "accel_ram"} <= set(soc_platform_signature().members)


def test_memories_of_zeros_are_written_as_loops_and_nothing_else_changes(empty):
    from qfab.cost_model.pnr import drop_zero_memory_init
    from qfab.hw.soc.memory import compact_zero_init

    image = (5, 0, 7)
    patched = with_init(empty, f"{NAME}.rom", image)
    compact = compact_zero_init(patched)
    assert len(compact) < len(patched) // 5
    # the RAM's 64 lanes of one bit, the ROM's 12 empty byte-lane banks (and the register
    # file) become loops
    assert compact.count("[i] = 1'h0;") == 64 and compact.count("[i] = 8'h0;") >= 12
    assert "      lane0_bank0[i] = 1'h0;" in compact  # a RAM lane
    # the ROM's first bank keeps its words, zeros between them too
    assert "    lane0_bank0[0] = 8'h05;\n    lane0_bank0[1] = 8'h00;\n" in compact
    # expanded again (each loop's lines as Amaranth writes them), the text is the same
    expanded = re.sub(r"  initial begin : (\w+)_zero\n    integer i;\n"
                      r"    for \(i = 0; i < (\d+); i = i \+ 1\)\n      \w+\[i\] = (\d+)'h0;\n",
                      lambda m: "  initial begin\n" + "".join(
                          f"    {m[1]}[{i}] = {m[3]}'h{'0' * -(-int(m[3]) // 4)};\n"
                          for i in range(int(m[2]))), compact)
    assert expanded == patched
    # the ROM kept word by word (as soc.v is made: compacted before the firmware's words
    # are written in), the same RAM
    rom = f"{NAME}.rom"
    kept = compact_zero_init(empty, keep=rom)
    assert with_init(kept, rom, image) == compact_zero_init(patched, keep=rom)
    assert kept.count("[i] = 1'h0;") == 64 and kept.count("[i] = 8'h0;") < 12
    # and place and route drops them as it drops the word-by-word blocks
    assert drop_zero_memory_init(compact) == drop_zero_memory_init(patched)
