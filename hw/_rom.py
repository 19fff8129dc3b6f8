"""Read-only memory contents packed once in NumPy.

Amaranth turns a nested-list initializer into a constant element by element, and checks a
layout-typed word against the memory's layout field by field: half the conversion time of a
folded design's Verilog. Here the words are packed into integers with NumPy for a memory of
plain bits, read through a view of the layout: the same bits, the same Verilog.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from amaranth.hdl import Const, Shape
from amaranth.lib import data


def rom_words(layout: Any, words: np.ndarray) -> list[int]:
    """The words of a memory of ``layout`` (read through ``layout(port.data)``) from ``words``
    [depth, ...], whose trailing axes are the (nested) ``data.ArrayLayout``'s, outer first, as
    plain integers. Elements wrap to their width, as Amaranth's own constants do."""
    words = np.asarray(words)
    elem, dims = layout, []
    while isinstance(elem, data.ArrayLayout):
        dims.append(elem.length)
        elem = elem.elem_shape
    if (not isinstance(elem, Shape) or tuple(words.shape[1:]) != tuple(dims)
            or words.dtype.kind not in "iu" or not 0 < elem.width <= 62):
        return [Const.cast(layout.const(w)).value for w in words.tolist()]
    flat = words.reshape(len(words), -1).astype(np.int64)
    # Element k of a word sits at bits [k * width, (k + 1) * width), the first lowest; an
    # arithmetic shift of a negative code gives its two's-complement bits.
    bits = (flat[:, :, None] >> np.arange(elem.width)) & 1
    packed = np.packbits(bits.reshape(len(words), -1).astype(np.uint8), axis=1,
                         bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]
