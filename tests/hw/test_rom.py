"""rom_words packs ROM words in NumPy to the bits Amaranth's own element-by-element
constants give, for signed and unsigned elements of any width, wrapping out-of-range codes."""

import numpy as np
import pytest
from amaranth.hdl import Const, signed, unsigned
from amaranth.lib import data
from qfab.hw._rom import rom_words


@pytest.mark.parametrize("shape", [signed(1), signed(2), unsigned(3), signed(8), unsigned(13),
                                   signed(31), signed(62)])
def test_packed_words_are_amaranths_constants(shape):
    rng = np.random.default_rng(shape.width)
    lo, hi = (-(2 ** 62), 2 ** 62) if shape.width >= 62 else (-(2 ** (shape.width + 1)),
                                                               2 ** (shape.width + 1))
    words = rng.integers(lo, hi, size=(5, 3, 4))  # wider than the element: codes wrap
    layout = data.ArrayLayout(data.ArrayLayout(shape, 4), 3)
    expected = [Const.cast(layout.const(w)).value for w in words.tolist()]
    assert rom_words(layout, words) == expected
