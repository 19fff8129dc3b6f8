"""Machine-mode CSRs: trap state (mstatus, mtvec, mepc, mcause, mtval, mscratch) and the
cycle and instret counters, with their read-only user aliases."""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from qfab.hw.rv32i.isa import MISA_M, MISA_VALUE, MSTATUS_MPP, Csr


class CsrFile(wiring.Component):
    """The CSRs of the core; one access per cycle.

    ``rdata`` and ``known`` are combinational in ``addr``; ``rdata`` is the value the CSR holds
    after the clock edge if nothing but time changes it (the cycle counters one ahead), so
    that the core registers it a cycle before the instruction's write-back uses it; a write
    (``we``) lands at the clock edge and wins over the counters' own increment. Read-only CSRs
    (address bits [11:10] = 0b11) are reported by ``read_only``; the core turns a write to
    one into an illegal instruction. ``trap`` saves ``trap_pc``/``trap_cause``/``trap_tval``
    and clears mstatus.MIE; ``mret`` restores it.

    Members
    -------
    addr : In(12)
    rdata : Out(32)
    known : Out(1)
        The address names an implemented CSR.
    read_only : Out(1)
    we : In(1)
    wdata : In(32)
    retire : In(1)
        An instruction retired this cycle (minstret counts it).
    trap, trap_pc, trap_cause, trap_tval : In(1), In(32), In(5), In(32)
    mret : In(1)
    mtvec, mepc : Out(32)

    Parameters
    ----------
    m_extension : bool
        Report the M extension in misa.
    """

    addr: In(12)
    rdata: Out(32)
    known: Out(1)
    read_only: Out(1)
    we: In(1)
    wdata: In(32)
    retire: In(1)
    trap: In(1)
    trap_pc: In(32)
    trap_cause: In(5)
    trap_tval: In(32)
    mret: In(1)
    mtvec: Out(32)
    mepc: Out(32)
    m_enable: In(1)

    def elaborate(self, platform) -> wiring.Module:
        m = Module()
        mie = Signal()
        mpie = Signal()
        mscratch = Signal(32)
        mcause = Signal(32)
        mtval = Signal(32)
        cycle = Signal(64)
        cycle_next = Signal(64)
        m.d.comb += cycle_next.eq(cycle + 1)
        instret = Signal(64)
        mstatus = Signal(32)
        m.d.comb += mstatus.eq(Cat(Const(0, 3), mie, Const(0, 3), mpie) | MSTATUS_MPP)

        readable = {
            Csr.MSTATUS: mstatus, Csr.MISA: Const(MISA_VALUE, 32) | Mux(self.m_enable, MISA_M, 0),
            Csr.MIE: Const(0, 32),
            Csr.MTVEC: self.mtvec, Csr.MSCRATCH: mscratch, Csr.MEPC: self.mepc,
            Csr.MCAUSE: mcause, Csr.MTVAL: mtval, Csr.MIP: Const(0, 32),
            Csr.MCYCLE: cycle_next[:32], Csr.MCYCLEH: cycle_next[32:],
            Csr.MINSTRET: instret[:32], Csr.MINSTRETH: instret[32:],
            Csr.CYCLE: cycle_next[:32], Csr.CYCLEH: cycle_next[32:],
            Csr.TIME: cycle_next[:32], Csr.TIMEH: cycle_next[32:],
            Csr.INSTRET: instret[:32], Csr.INSTRETH: instret[32:],
            Csr.MVENDORID: Const(0, 32), Csr.MARCHID: Const(0, 32),
            Csr.MIMPID: Const(0, 32), Csr.MHARTID: Const(0, 32),
        }
        with m.Switch(self.addr):
            for addr, value in readable.items():
                with m.Case(int(addr)):
                    m.d.comb += [self.rdata.eq(value), self.known.eq(1)]
        m.d.comb += self.read_only.eq(self.addr[10:12] == 0b11)

        m.d.sync += cycle.eq(cycle_next)
        # A write to minstret is what the next instruction reads: it replaces, not adds to,
        # the writing instruction's own count.
        writes_instret = self.we & ((self.addr == Csr.MINSTRET) | (self.addr == Csr.MINSTRETH))
        with m.If(self.retire & ~writes_instret):
            m.d.sync += instret.eq(instret + 1)

        w = self.wdata
        with m.If(self.we):
            with m.Switch(self.addr):
                with m.Case(Csr.MSTATUS):
                    m.d.sync += [mie.eq(w[3]), mpie.eq(w[7])]
                with m.Case(Csr.MTVEC):
                    m.d.sync += self.mtvec.eq(Cat(Const(0, 2), w[2:]))
                with m.Case(Csr.MSCRATCH):
                    m.d.sync += mscratch.eq(w)
                with m.Case(Csr.MEPC):
                    m.d.sync += self.mepc.eq(Cat(Const(0, 2), w[2:]))
                with m.Case(Csr.MCAUSE):
                    m.d.sync += mcause.eq(w)
                with m.Case(Csr.MTVAL):
                    m.d.sync += mtval.eq(w)
                with m.Case(Csr.MCYCLE):
                    m.d.sync += cycle[:32].eq(w)
                with m.Case(Csr.MCYCLEH):
                    m.d.sync += cycle[32:].eq(w)
                with m.Case(Csr.MINSTRET):
                    m.d.sync += instret[:32].eq(w)
                with m.Case(Csr.MINSTRETH):
                    m.d.sync += instret[32:].eq(w)
        with m.If(self.trap):
            m.d.sync += [
                self.mepc.eq(self.trap_pc), mcause.eq(self.trap_cause),
                mtval.eq(self.trap_tval), mpie.eq(mie), mie.eq(0),
            ]
        with m.If(self.mret):
            m.d.sync += [mie.eq(mpie), mpie.eq(1)]
        return m
