"""The lanes of an unrolled pipeline (:mod:`qfab.hw.unrolled`): a channel of a requantizer
or a thresholder as a value of the pipeline's graph, in as little logic as its constants
allow.

A requantizer lane is one adder: ``acc * k + C`` with the bias, the rounding's half and
the zero point folded into the constant ``C`` (``k`` in shifts and adds when it is not a
power of two), then the shift, a bit clear for round-half-to-even (an exact tie leaves an
odd quotient one too high: clearing its low bit takes one off), and the clamp, whose
compares with a bound of 0 or a power of two are bit logic. A threshold lane compares the
sum with each threshold (a sign turned into the compare's direction, no negation) and
turns the sorted compares' thermometer code into the output code in bit logic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from amaranth.hdl import Cat, Const, Mux
from qfab.hw.adder_graph import csd_digits
from qfab.hw.multipliers import shape_for_range
from qfab.hw.requant import Requantizer
from qfab.hw.threshold import Thresholder

if TYPE_CHECKING:
    from qfab.hw.unrolled import _Builder

Term = tuple[int | None, int, int, tuple[int, int]]  # value, left shift, sign, value range


def term_range(t: Term) -> tuple[int, int]:
    """The range of the value a term stands for (its value's, shifted and signed)."""
    _, shift, sign, (lo, hi) = t
    return (lo << shift, hi << shift) if sign > 0 else (-(hi << shift), -(lo << shift))


def bit_logic(bound: int) -> bool:
    """Whether a compare with ``bound`` is bit logic: 0, or plus or minus a power of two."""
    return bound == 0 or abs(bound) & (abs(bound) - 1) == 0


def below(x: Any, bound: int, lo: int) -> Any:
    """``x < bound``, ``lo`` the least ``x``: the bits above the bound where
    :func:`bit_logic`, a comparator otherwise."""
    if bound == 0:
        return x[-1] if lo < 0 else Const(0, 1)
    if not bit_logic(bound):
        return x < bound
    high = x[abs(bound).bit_length() - 1:]
    if bound > 0:
        return (x[-1] | ~high.any()) if lo < 0 else ~high.any()
    return x[-1] & ~high.all()


def compare_bits(bound: int, width: int) -> int:
    """Bits a compare of a ``width``-bit value with ``bound`` reads: those above the
    bound where it is bit logic, all of them for a comparator."""
    return width - (abs(bound).bit_length() - 1 if bound else width - 1) \
        if bit_logic(bound) else width


def requant_lane(builder: _Builder, n: int, c: int, unit: Requantizer, t: Term) -> Term:
    """Channel ``c`` of requantizer ``unit`` (layer ``n``) on the sum ``t``, added to
    ``builder``'s graph: its output code, as a term."""
    k, s = int(unit._hw_mult[c]), int(unit._hw_shift[c])
    bias, zp, rounding = int(unit.bias[c]), unit.zero_point, unit.rounding
    if k:
        e = (k & -k).bit_length() - 1  # k's trailing zeros go into the shift
        k, s = k >> min(e, s), s - min(e, s)
    half = 1 << (s - 1) if s and rounding != "floor" else 0
    even = rounding == "half_even" and s > 0
    zp_after = zp if even and zp & 1 else 0  # an odd one would change the parity
    const = bias * k + half + ((zp - zp_after) << s)
    v, shift, sign, _ = t
    acc_lo, acc_hi = term_range(t)
    r_lo, r_hi = acc_lo * k + const, acc_hi * k + const
    parts = [] if v is None else [(v, shift + d, sign * g, t[3])
                                   for d, g in csd_digits(k)]
    r = builder._sum(parts + ([(None, 0, 1, (const, const))] if const else []),
                  f"l{n}_r{c}")
    c_lo, c_hi = (r_lo >> s) - even, r_hi >> s
    low, high = unit.lo - zp_after, unit.hi - zp_after
    out_shape = unit.out_shape
    levels = int((c_lo < low and not bit_logic(low))
                 or (c_hi > high and not bit_logic(high + 1)))

    def lane(x):
        q = x >> s if s else x
        if even:
            tie = ~x[:s].any()
            q = Cat(q[0] & ~tie, q[1:])
            q = q.as_signed() if x.shape().signed else q
        out = q[:out_shape.width] if len(q) > out_shape.width else q
        if c_hi > high:
            out = Mux(below(q, high + 1, c_lo), out, high)
        if c_lo < low:
            out = Mux(below(q, low, c_lo), low, out)
        return out + zp_after if zp_after else out

    q_width = shape_for_range(c_lo, c_hi).width
    cost = {"mux": out_shape.width if c_lo < low or c_hi > high else 0,
             "cmpk": (s if even else 0)
             + (compare_bits(low, q_width) if c_lo < low else 0)
             + (compare_bits(high + 1, q_width) if c_hi > high else 0),
             "adder": out_shape.width if zp_after else 0}
    out = builder.g.add((r,), levels + bool(zp_after), out_shape, lane, f"l{n}_q{c}", cost)
    return out, 0, 1, (max(unit.lo, c_lo + zp_after), min(unit.hi, c_hi + zp_after))


def threshold_lane(builder: _Builder, n: int, c: int, unit: Thresholder, t: Term) -> Term:
    """Channel ``c`` of thresholder ``unit`` (layer ``n``) on the sum ``t``, added to
    ``builder``'s graph: its output code, as a term."""
    v, shift, sign, (v_lo, v_hi) = t
    thr = [int(x) for x in unit.thresholds[c]]
    # reached: acc >= thr, as a compare of the value: v >= ceil(thr / 2**shift), or
    # for a negated term v < floor(-thr / 2**shift) + 1
    bounds = [-((-x) >> shift) if sign > 0 else ((-x) >> shift) + 1 for x in thr]
    fixed: list[bool | None] = []
    for x, b in zip(thr, bounds, strict=True):
        if v is None:
            fixed.append(0 >= x)
        elif b <= v_lo or b > v_hi:
            fixed.append((b <= v_lo) == (sign > 0))
        else:
            fixed.append(None)
    levels = int(any(f is None and not bit_logic(b) for b, f in zip(bounds, fixed,
                                                                      strict=True)))
    width = unit.out_shape.width
    codes = [(unit.out_bias + unit.out_scale * m) & ((1 << width) - 1)
             for m in range(len(thr) + 1)]

    def lane(x=None):
        reached = []
        for b, f in zip(bounds, fixed, strict=True):
            if f is not None:
                reached.append(Const(int(f), 1))
            else:
                under = below(x, b, v_lo)
                reached.append(~under if sign > 0 else under)
        ones = [Const(1, 1)] + reached + [Const(0, 1)]
        exactly = [ones[m] & ~ones[m + 1] for m in range(len(thr) + 1)]
        bits = []
        for j in range(width):
            hits = [exactly[m] for m, code in enumerate(codes) if code >> j & 1]
            bits.append(Cat(*hits).any() if hits else Const(0, 1))
        return Cat(*bits)

    v_width = shape_for_range(v_lo, v_hi).width
    cost = {"cmpk": sum(compare_bits(b, v_width) for b, f in zip(bounds, fixed,
                                                                   strict=True)
                        if f is None), "mux": width}
    out = builder.g.add(() if v is None else (v,), levels if v is not None else 0,
                     unit.out_shape, lane, f"l{n}_t{c}", cost)
    lo, hi = sorted([unit.out_bias, unit.out_bias + unit.out_scale * len(thr)])
    return out, 0, 1, (lo, hi)
