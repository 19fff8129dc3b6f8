"""The M extension: a single-cycle multiplier and a 32-step restoring divider, with their
Python reference (used by the instruction-set simulator)."""

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

MASK32 = 0xFFFF_FFFF
DIVIDE_CYCLES = 33  # 32 steps and the cycle that writes the result
# The core's cycles for a multiply beyond an ALU instruction's: its product is ready two
# cycles after the operands (EXECUTE, WRITEBACK), and one more cycle writes it.
MULTIPLY_CYCLES = 1
PRODUCT_LATENCY = 2


def _signed(x: int) -> int:
    return x - (1 << 32) if x & 0x8000_0000 else x


def muldiv_reference(op: int, a: int, b: int) -> int:
    """What MUL..REMU (funct3 ``op``) give for unsigned 32-bit ``a`` and ``b``.

    Division by zero and signed overflow follow the ISA: x / 0 = -1 (all ones), x % 0 = x,
    -2**31 / -1 = -2**31, -2**31 % -1 = 0.
    """
    sa, sb = _signed(a), _signed(b)
    if op == 0:
        r = a * b
    elif op == 1:
        r = (sa * sb) >> 32
    elif op == 2:
        r = (sa * b) >> 32
    elif op == 3:
        r = (a * b) >> 32
    elif op in (4, 6):
        if b == 0:
            r = -1 if op == 4 else a
        else:
            q = abs(sa) // abs(sb)
            q = -q if (sa < 0) != (sb < 0) else q
            r = q if op == 4 else sa - q * sb
    elif op in (5, 7):
        if b == 0:
            r = MASK32 if op == 5 else a
        else:
            r = a // b if op == 5 else a % b
    else:
        raise ValueError(f"M-extension op {op!r} is not a funct3 value")
    return r & MASK32


class MulDiv(wiring.Component):
    """RV32M arithmetic for the multi-cycle core.

    ``product`` (MUL, MULH, MULHSU, MULHU by ``op``) is that of the ``a``, ``b`` and ``op``
    of ``PRODUCT_LATENCY`` cycles before: four 17 x 17 partial products (one FPGA DSP block
    each) are registered, then their sum, so no cycle holds a multiplier and a 64-bit adder
    in a row. A division starts when ``start`` is high (``op`` 4..7, operands sampled
    then) and raises ``done`` for one cycle with ``quotient_or_remainder`` after
    ``DIVIDE_CYCLES`` cycles.

    Members
    -------
    op : In(3)
    a, b : In(32)
    start : In(1)
    product : Out(32)
    done : Out(1)
    quotient_or_remainder : Out(32)
    """

    op: In(3)
    a: In(32)
    b: In(32)
    start: In(1)
    product: Out(32)
    done: Out(1)
    quotient_or_remainder: Out(32)

    def elaborate(self, platform) -> wiring.Module:
        m = Module()
        a, b, op = self.a, self.b, self.op
        a_signed = (op == 1) | (op == 2)
        b_signed = op == 1
        a_ext = Cat(a, a[31] & a_signed).as_signed()
        b_ext = Cat(b, b[31] & b_signed).as_signed()
        # a_ext = a_hi * 2**16 + a_lo with a_hi signed (17 bits) and a_lo unsigned (16).
        a_lo, a_hi = a_ext[:16], a_ext[16:].as_signed()
        b_lo, b_hi = b_ext[:16], b_ext[16:].as_signed()
        hh, hl, lh, ll = (Signal(signed(34)), Signal(signed(34)), Signal(signed(34)),
                          Signal(32))
        m.d.sync += [hh.eq(a_hi * b_hi), hl.eq(a_hi * b_lo), lh.eq(a_lo * b_hi),
                     ll.eq(a_lo * b_lo)]
        full = Signal(64)
        m.d.sync += full.eq(Cat(ll[:16], (ll[16:] + (hl + lh) + (hh << 16))[:48]))
        m.d.comb += self.product.eq(Mux(op == 0, full[:32], full[32:64]))

        is_signed = ~op[0]
        quotient = Signal(32)  # shifts the dividend out as the quotient shifts in
        remainder = Signal(32)
        divisor = Signal(32)
        count = Signal(range(33))
        running = Signal()
        negate_q = Signal()
        negate_r = Signal()
        want_rem = Signal()
        with m.If(self.start):
            a_neg, b_neg = is_signed & a[31], is_signed & b[31]
            m.d.sync += [
                quotient.eq(Mux(a_neg, -a, a)), remainder.eq(0),
                divisor.eq(Mux(b_neg, -b, b)), count.eq(32), running.eq(1),
                # x / 0 is all ones whatever the signs; x % 0 is x.
                negate_q.eq((a_neg ^ b_neg) & (b != 0)), negate_r.eq(a_neg),
                want_rem.eq(op[1]),
            ]
        with m.Elif(running & (count != 0)):
            shifted = Cat(quotient[31], remainder)  # 33 bits
            diff = Signal(34)
            m.d.comb += diff.eq(shifted - divisor)
            fits = ~diff[33]
            m.d.sync += [
                remainder.eq(Mux(fits, diff[:32], shifted[:32])),
                quotient.eq(Cat(fits, quotient[:31])),
                count.eq(count - 1),
            ]
        with m.Elif(running):
            m.d.sync += running.eq(0)
            m.d.comb += self.done.eq(1)
        q = Mux(negate_q, -quotient, quotient)
        r = Mux(negate_r, -remainder, remainder)
        m.d.comb += self.quotient_or_remainder.eq(Mux(want_rem, r, q))
        return m
