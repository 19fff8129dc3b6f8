"""Operand decoders for a MAC layer: what the activations and the weights are in hardware."""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Shape, signed
from qfab.compiler.ir import Node
from qfab.hw.multipliers import (
    IntDecoder,
    MinifloatDecoder,
    Multiplier,
    OperandDecoder,
    shape_for_range,
)
from qfab.numerics import FixedFormat, IntFormat, MinifloatFormat

from qfab.errors import QfabError


def activation_decoder(fmt, node: Node) -> OperandDecoder:
    """The decoder of the streamed codes: minifloats decode to their exact fixed-point value,
    fixed-point words are integers in units of ``2**-frac_bits``."""
    from qfab.compiler.backend.plan import element_shape

    if isinstance(fmt, MinifloatFormat):
        return MinifloatDecoder(fmt)
    if isinstance(fmt, FixedFormat):
        return IntDecoder(element_shape(fmt), frac_bits=fmt.frac_bits)
    if isinstance(fmt, IntFormat):
        return IntDecoder(element_shape(fmt))
    raise QfabError(f"node {node.name!r}: activations in {fmt} have no hardware decoder")


def weight_operand(node: Node, weights: np.ndarray) -> tuple[OperandDecoder, np.ndarray]:
    """The weight decoder and the codes the weight memory stores, for ``weights`` (the IR's
    exact integers, zero points subtracted, already arranged for the unit).

    Weights the frontend marked with a minifloat ``weight_format`` are stored as their codes
    (8 bits for E4M3 instead of the ~20-bit integers of their fixed-point values) when every
    value still is one; otherwise they are stored as integers in the narrowest width."""
    w = np.asarray(weights, np.int64)
    fmt = node.attrs.get("weight_format")
    if isinstance(fmt, MinifloatFormat) and w.size:
        codes = fmt.encode_fixed(w, fmt.lsb_exponent)
        if np.array_equal(fmt.to_fixed(codes), w):
            return MinifloatDecoder(fmt), codes
    return IntDecoder(integer_weight_shape(w)), w


def integer_weight_shape(weights: np.ndarray) -> Shape:
    """The narrowest shape holding every integer weight (at least 2 bits when signed)."""
    w = np.asarray(weights, np.int64)
    shape = shape_for_range(min(int(w.min()), 0), max(int(w.max()), 0))
    return signed(2) if shape.signed and shape.width < 2 else shape


def mac_operands(in_fmt, node: Node, weights: np.ndarray) -> tuple[Multiplier, np.ndarray]:
    """The unit's multiplier and its stored weight codes (see :func:`weight_operand`)."""
    decoder, codes = weight_operand(node, weights)
    return Multiplier(activation_decoder(in_fmt, node), decoder), codes


def multiplier_for(in_fmt, node: Node) -> Multiplier:
    """The multiplier for the node's weights as the IR holds them (see :func:`mac_operands`)."""
    return mac_operands(in_fmt, node, node.attrs["weight"])[0]
