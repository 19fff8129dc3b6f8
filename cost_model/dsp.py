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
        return 0
    return _tiles(wa, rule.a_max, rule.a_part or rule.a_max, rule.signed_only) * \
        _tiles(wb, rule.b_max, rule.b_max, rule.signed_only)


def _tiles(width: int, most: int, part: int, signed_only: bool) -> int:
    """Tiles mul2dsp cuts one operand into: full tiles of ``part`` bits (less a sign bit of
    headroom on signed-only blocks) and a last one of at most ``most``."""
    if width <= most:
        return 1
    step = part - (1 if signed_only else 0)
    return 1 + math.ceil((width - most) / step)
