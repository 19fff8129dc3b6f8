"""The RV32I integer ALU and its Python reference (used by the instruction-set simulator)."""

from amaranth import Module, Mux
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


class Alu(wiring.Component):
    """Combinational RV32I ALU: ``result = op(a, b)`` with a single-cycle barrel shifter.

    Members
    -------
    op : In(3)
        funct3 (:class:`~qfab.hw.rv32i.isa.AluOp`).
    alt : In(1)
        funct7 bit 5: subtract, or shift right arithmetically.
    a, b : In(32)
    result : Out(32)
    """

    op: In(3)
    alt: In(1)
    a: In(32)
    b: In(32)
    result: Out(32)

    def elaborate(self, platform) -> wiring.Module:
        m = Module()
        a, b = self.a, self.b
        shamt = b[:5]
        with m.Switch(self.op):
            with m.Case(AluOp.ADD):
                m.d.comb += self.result.eq(Mux(self.alt, a - b, a + b))
            with m.Case(AluOp.SLL):
                m.d.comb += self.result.eq(a << shamt)
            with m.Case(AluOp.SLT):
                m.d.comb += self.result.eq(a.as_signed() < b.as_signed())
            with m.Case(AluOp.SLTU):
                m.d.comb += self.result.eq(a < b)
            with m.Case(AluOp.XOR):
                m.d.comb += self.result.eq(a ^ b)
            with m.Case(AluOp.SR):
                m.d.comb += self.result.eq(Mux(self.alt, a.as_signed() >> shamt, a >> shamt))
            with m.Case(AluOp.OR):
                m.d.comb += self.result.eq(a | b)
            with m.Case(AluOp.AND):
                m.d.comb += self.result.eq(a & b)
        return m
