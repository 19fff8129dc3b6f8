"""The RV32I integer ALU and its Python reference (used by the instruction-set simulator)."""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from qfab.hw.rv32i.isa import AluOp

MASK32 = 0xFFFF_FFFF


def _signed(x: int) -> int:
    return x - (1 << 32) if x & 0x8000_0000 else x


def alu_reference(op: int, alt: bool, a: int, b: int) -> int:
    """What the ALU computes for funct3 ``op`` on unsigned 32-bit ``a`` and ``b``.

    ``alt`` is funct7 bit 5: SUB instead of ADD, SRA instead of SRL.
    """
    shamt = b & 31
    if op == AluOp.ADD:
        r = a - b if alt else a + b
    elif op == AluOp.SLL:
        r = a << shamt
    elif op == AluOp.SLT:
        r = int(_signed(a) < _signed(b))
    elif op == AluOp.SLTU:
        r = int(a < b)
    elif op == AluOp.XOR:
        r = a ^ b
    elif op == AluOp.SR:
        r = _signed(a) >> shamt if alt else a >> shamt
    elif op == AluOp.OR:
        r = a | b
    elif op == AluOp.AND:
        r = a & b
    else:
        raise ValueError(f"ALU op {op!r} is not a funct3 value")
    return r & MASK32


def alu_controls(op: int, alt: bool) -> tuple[bool, bool]:
    """``(sub, unsigned)`` for funct3 ``op`` of OP / OP-IMM: whether the adder subtracts
    (SUB, SLT, SLTU) and whether its comparison is unsigned (SLTU)."""
    return (bool(alt) and op == AluOp.ADD) or op in (AluOp.SLT, AluOp.SLTU), op == AluOp.SLTU


class Alu(wiring.Component):
    """Combinational RV32I ALU around one adder that adds, subtracts and compares.

    ``result`` is ``op(a, b)`` for every funct3 but SLT and SLTU, for which it is 0 and
    ``less`` holds the answer (bit 0 of the result): the core registers the two apart, so
    that the comparison, which ends at the adder's carry out, passes through no result
    multiplexer in the same cycle. The same adder compares a branch's operands.

    Members
    -------
    op : In(3)
        funct3 (:class:`~qfab.hw.rv32i.isa.AluOp`).
    alt : In(1)
        funct7 bit 5 of a shift right: arithmetic.
    sub : In(1)
        The adder computes ``a - b`` (SUB, SLT, SLTU, a branch): :func:`alu_controls`.
    unsigned : In(1)
        ``less`` compares unsigned (SLTU, BLTU, BGEU).
    a, b : In(32)
    result : Out(32)
    less : Out(1)
        ``a < b`` while ``sub``.
    equal : Out(1)
        ``a == b``.
    """

    op: In(3)
    alt: In(1)
    sub: In(1)
    unsigned: In(1)
    a: In(32)
    b: In(32)
    result: Out(32)
    less: Out(1)
    equal: Out(1)

    def elaborate(self, platform) -> wiring.Module:
        m = Module()
        a, b = self.a, self.b
        shamt = b[:5]
        # Carry in = sub, as the low bits of one 33-bit sum: (2a + sub) + (2(b ^ sub) + sub).
        addend = b ^ self.sub.replicate(32)
        total = Signal(34)
        m.d.comb += total.eq(Cat(self.sub, a) + Cat(self.sub, addend))
        s, carry = total[1:33], total[33]
        # a - b borrows (no carry out) exactly when a < b unsigned; signed, the sign bits
        # decide when they differ.
        m.d.comb += [self.less.eq(Mux(self.unsigned | (a[31] == b[31]), ~carry, a[31])),
                     self.equal.eq(a == b)]
        with m.Switch(self.op):
            with m.Case(AluOp.ADD):
                m.d.comb += self.result.eq(s)
            with m.Case(AluOp.SLL):
                m.d.comb += self.result.eq(a << shamt)
            with m.Case(AluOp.XOR):
                m.d.comb += self.result.eq(a ^ b)
            with m.Case(AluOp.SR):
                m.d.comb += self.result.eq(Mux(self.alt, a.as_signed() >> shamt, a >> shamt))
            with m.Case(AluOp.OR):
                m.d.comb += self.result.eq(a | b)
            with m.Case(AluOp.AND):
                m.d.comb += self.result.eq(a & b)
        return m
