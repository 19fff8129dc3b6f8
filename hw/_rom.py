"""Read-only memory contents packed once in NumPy.

Amaranth turns a nested-list initializer into a constant element by element (``Layout.const``
builds a ``Const`` for every field of every word: half the conversion time of a folded design's
Verilog). Packing the words into integers with NumPy and handing over ``data.Const`` words gives
the same bits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data


def rom_init(layout: Any, words: np.ndarray) -> list:
    """The initializer of a memory of ``layout`` words from ``words`` [depth, ...], whose
    trailing axes are the (nested) ``data.ArrayLayout``'s, outer first. Elements wrap to their
    width, as Amaranth's own constants do. Layouts of other element shapes get plain lists."""
    words = np.asarray(words)
    elem, dims = layout, []
    while isinstance(elem, data.ArrayLayout):
        dims.append(elem.length)
        elem = elem.elem_shape
    if (not isinstance(elem, Shape) or tuple(words.shape[1:]) != tuple(dims)
            or words.dtype.kind not in "iu" or not 0 < elem.width <= 62):
        return words.tolist()
    flat = words.reshape(len(words), -1).astype(np.int64)
    # Element k of a word sits at bits [k * width, (k + 1) * width), the first lowest; an
    # arithmetic shift of a negative code gives its two's-complement bits.
    bits = (flat[:, :, None] >> np.arange(elem.width)) & 1
    packed = np.packbits(bits.reshape(len(words), -1).astype(np.uint8), axis=1,
                         bitorder="little")
    return [data.Const(layout, int.from_bytes(row.tobytes(), "little")) for row in packed]
