"""Operand decoders for a MAC layer: what the activations and the weights are in hardware."""

from __future__ import annotations

import numpy as np
from qfab.compiler.ir import Node
from qfab.hw.multipliers import IntDecoder, MinifloatDecoder, Multiplier, shape_for_range
from qfab.numerics import FixedFormat, IntFormat, MinifloatFormat

from qfab.errors import QfabError


def activation_decoder(fmt, node: Node):
    from qfab.compiler.backend.plan import element_shape

    if isinstance(fmt, MinifloatFormat):
        return MinifloatDecoder(fmt)
    if isinstance(fmt, IntFormat | FixedFormat):
        return IntDecoder(element_shape(fmt))
    raise QfabError(f"node {node.name!r}: activations in {fmt} have no hardware decoder")


def multiplier_for(in_fmt, node: Node) -> Multiplier:
    """Activations decoded from their codes; weights stored as the exact integers the IR
    holds (zero points already subtracted), in the narrowest width that holds them."""
    w = np.asarray(node.attrs["weight"], np.int64)
    shape = shape_for_range(min(int(w.min()), 0), max(int(w.max()), 0))
    if shape.width < 2 and shape.signed:
        shape = shape.__class__(2, True)
    return Multiplier(activation_decoder(in_fmt, node), IntDecoder(shape))
