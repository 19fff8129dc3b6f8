"""Which multipliers Yosys puts in DSP blocks, and how many each takes.

Yosys maps a ``$mul`` cell with ``mul2dsp`` when both operands and the product are wide
enough (``DSP_*_MINWIDTH``); a product wider than one block is split into tiles of
``DSP_A_MAXWIDTH`` x ``DSP_B_MAXWIDTH`` (the parameters each ``synth_*`` script passes).
Blocks that only accept signed operands see an unsigned operand one bit wider.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth.hdl import Shape


@dataclass(frozen=True)
class DspRule:
    a_max: int
    b_max: int
    a_min: int = 2
    b_min: int = 2
    y_min: int = 0
    signed_only: bool = False
    a_part: int = 0  # width of each tile when A is split (DSP_A_MAXWIDTH_PARTIAL)


# The -D parameters synth_xilinx (xc7), synth_ecp5 and synth_ice40 -dsp give mul2dsp.
RULES = {
    "xilinx7": DspRule(a_max=25, b_max=18, y_min=9, signed_only=True, a_part=18),
    "ecp5": DspRule(a_max=18, b_max=18),
    "ice40": DspRule(a_max=16, b_max=16, y_min=11),
}


def multiplier_dsps(a: Shape, b: Shape, family: str) -> int:
    """DSP blocks for one ``a * b`` product; 0 when Yosys leaves it in logic."""
    return multiplier_split(a, b, family)[0]


def multiplier_split(a: Shape, b: Shape, family: str) -> tuple[int, int]:
    """(DSP blocks, partial-product bits left in logic) of one ``a * b`` product."""
    rule = RULES[family]
    a, b = Shape.cast(a), Shape.cast(b)
    wa, wb = a.width, b.width
    y = wa + wb
    if rule.signed_only:
        wa += 0 if a.signed else 1
        wb += 0 if b.signed else 1
    if wa < wb:
        wa, wb = wb, wa
    if wa < rule.a_min or wb < rule.b_min or y < rule.y_min:
        return 0, a.width * b.width
    ta, rest_a = _tiles(wa, rule.a_max, rule.a_part or rule.a_max, rule.a_min,
                        rule.signed_only)
    tb, rest_b = _tiles(wb, rule.b_max, rule.b_max, rule.b_min, rule.signed_only)
    return ta * tb, rest_a * wb + rest_b * wa


def _tiles(width: int, most: int, part: int, least: int, signed_only: bool) -> tuple[int, int]:
    """Tiles mul2dsp cuts one operand into, and the bits left in logic: low tiles of
    ``part`` bits (less a sign bit of headroom on signed-only blocks) until at most ``most``
    are left; a last piece narrower than ``least`` bits stays in logic (a 17-bit operand on
    iCE40's 16-bit MAC)."""
    if width <= most:
        return 1, 0
    step = part - (1 if signed_only else 0)
    low = math.ceil((width - most) / step)
    last = width - low * step
    return (low + 1, 0) if last >= least else (low, last)


def operand_shape(decoder) -> Shape:
    """What a hw/multipliers decoder feeds the multiply: the significand of a minifloat
    (the product is shifted afterwards), the code of an integer."""
    fmt = getattr(decoder, "fmt", None)
    if fmt is not None:
        return Shape(fmt.man_bits + 2, True)
    return decoder.value_shape
