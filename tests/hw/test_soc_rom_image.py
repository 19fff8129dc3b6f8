"""The SoC's platform is converted once with an empty ROM and a firmware image written into
its Verilog afterwards: the text must be exactly what converting it with that image gives."""

import random

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
