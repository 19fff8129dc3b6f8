"""A multi-cycle RV32I + Zicsr core (machine mode only, no interrupts).

States: FETCH (request the word at ``pc``; on ``ready`` latch it and address the register
file with its rs1/rs2 fields), EXECUTE (decode, ALU, branch, CSR, trap; write rd or start a
memory access) and MEMORY (wait for the load or store). With the two-cycle on-chip memories
of :mod:`qfab.hw.soc.memory` an instruction takes

=====================================================  ======
class                                                  cycles
=====================================================  ======
ALU, LUI/AUIPC, branch (taken or not), JAL/JALR, CSR   3
load, store                                            5
trap entry (ecall, ebreak, illegal, misaligned), mret  3
MUL, MULH, MULHSU, MULHU (with ``m_extension``)        3
DIV, DIVU, REM, REMU (with ``m_extension``)            36
=====================================================  ======

plus one per wait state a slower device adds. Misaligned loads and stores, and jumps or
taken branches to a target that is not 4-byte aligned, trap (mtval holds the address); a
bus error traps as an access fault.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from qfab.hw.rv32i.alu import Alu
from qfab.hw.rv32i.csr import CsrFile
from qfab.hw.rv32i.isa import EBREAK, ECALL, MRET, WFI, Cause, Opcode
from qfab.hw.rv32i.muldiv import DIVIDE_CYCLES, MulDiv
from qfab.hw.soc.bus import BusSignature

CYCLES_PER_CLASS = {"alu": 3, "branch": 3, "jump": 3, "csr": 3, "load": 5, "store": 5,
                    "trap": 3, "mul": 3, "div": 3 + DIVIDE_CYCLES}


def _sext(value, width: int = 32):
    return value.as_signed().as_unsigned() if len(value) == width else \
        Cat(value, value[-1].replicate(width - len(value)))


class Rv32iCore(wiring.Component):
    """An RV32I core with Zicsr counters and machine-mode traps.

    Parameters
    ----------
    m_extension : bool
        Build the M extension (multiply, divide). It is active while the ``m_enable``
        input is high (then misa reports it; else M instructions are illegal), so one
        build serves RV32I and RV32IM programs.

    Members
    -------
    bus : Out(BusSignature)
        Instruction fetches and data accesses share this one port.
    boot_addr : In(32)
        The address of the first instruction, sampled while in reset.
    m_enable : In(1)
        Present with ``m_extension``: turns the M extension on.
    """

    cycles_per_class = CYCLES_PER_CLASS

    def __init__(self, *, m_extension: bool = False) -> None:
        if not isinstance(m_extension, bool):
            raise ValueError(f"m_extension must be a bool, got {m_extension!r}")
        self._m_extension = m_extension
        members = {"bus": Out(BusSignature()), "boot_addr": In(32)}
        if m_extension:
            members["m_enable"] = In(1)
        super().__init__(members)

    @property
    def m_extension(self) -> bool:
        return self._m_extension

    def elaborate(self, platform) -> wiring.Module:
        m = Module()
        m.submodules.alu = alu = Alu()
        m.submodules.csr = csr = CsrFile()
        if self._m_extension:
            m.d.comb += csr.m_enable.eq(self.m_enable)
        muldiv = None
        if self._m_extension:
            m.submodules.muldiv = muldiv = MulDiv()
        m.submodules.regs = regs = Memory(shape=32, depth=32, init=[])
        rs1_port = regs.read_port()
        rs2_port = regs.read_port()
        rd_port = regs.write_port()

        pc = Signal(32)
        instr = Signal(32)
        started = Signal()
        with m.If(~started):
            m.d.sync += [pc.eq(self.boot_addr), started.eq(1)]

        opcode, rd, f3 = instr[:7], instr[7:12], instr[12:15]
        rs1, f7 = instr[15:20], instr[25:32]
        imm_i = _sext(instr[20:32])
        imm_s = _sext(Cat(instr[7:12], instr[25:32]))
        imm_b = _sext(Cat(Const(0, 1), instr[8:12], instr[25:31], instr[7], instr[31]))
        imm_u = Cat(Const(0, 12), instr[12:32])
        imm_j = _sext(Cat(Const(0, 1), instr[21:31], instr[20], instr[12:20], instr[31]))
        a, b = rs1_port.data, rs2_port.data
        pc_plus4 = pc + 4

        # Memory access registered between EXECUTE and MEMORY.
        mem_addr = Signal(32)
        mem_we = Signal()
        mem_sel = Signal(4)
        mem_wdata = Signal(32)

        # Trap request from EXECUTE (or a bus error in FETCH / MEMORY).
        trap = Signal()
        trap_cause = Signal(5)
        trap_tval = Signal(32)
        m.d.comb += [csr.trap.eq(trap), csr.trap_pc.eq(pc), csr.trap_cause.eq(trap_cause),
                     csr.trap_tval.eq(trap_tval)]
        with m.If(trap):
            m.d.sync += pc.eq(csr.mtvec)

        m.d.comb += [rs1_port.en.eq(0), rs2_port.en.eq(0), rd_port.addr.eq(rd)]

        with m.FSM():
            with m.State("FETCH"):
                m.d.comb += [self.bus.valid.eq(started), self.bus.addr.eq(pc),
                             self.bus.sel.eq(0b1111)]
                with m.If(self.bus.valid & self.bus.ready):
                    with m.If(self.bus.err):
                        m.d.comb += [trap.eq(1), trap_cause.eq(Cause.FETCH_FAULT),
                                     trap_tval.eq(pc)]
                    with m.Else():
                        m.d.comb += [
                            rs1_port.en.eq(1), rs1_port.addr.eq(self.bus.rdata[15:20]),
                            rs2_port.en.eq(1), rs2_port.addr.eq(self.bus.rdata[20:25]),
                        ]
                        m.d.sync += instr.eq(self.bus.rdata)
                        m.next = "EXECUTE"

            with m.State("EXECUTE"):
                m.next = "FETCH"
                self._execute(m, locals())

            if muldiv is not None:
                with m.State("DIVIDE"):
                    with m.If(muldiv.done):
                        m.d.comb += [csr.retire.eq(1), rd_port.en.eq(rd != 0),
                                     rd_port.data.eq(muldiv.quotient_or_remainder)]
                        m.d.sync += pc.eq(pc_plus4)
                        m.next = "FETCH"

            with m.State("MEMORY"):
                m.d.comb += [self.bus.valid.eq(1), self.bus.addr.eq(mem_addr),
                             self.bus.we.eq(mem_we), self.bus.sel.eq(mem_sel),
                             self.bus.wdata.eq(mem_wdata)]
                with m.If(self.bus.ready):
                    m.next = "FETCH"
                    with m.If(self.bus.err):
                        m.d.comb += [trap.eq(1), trap_tval.eq(mem_addr),
                                     trap_cause.eq(Mux(mem_we, Cause.STORE_FAULT,
                                                       Cause.LOAD_FAULT))]
                    with m.Else():
                        m.d.comb += csr.retire.eq(1)
                        m.d.sync += pc.eq(pc_plus4)
                        with m.If(~mem_we):
                            shifted = self.bus.rdata >> Cat(Const(0, 3), mem_addr[:2])
                            value = Signal(32)
                            with m.Switch(f3):
                                with m.Case(0b000):
                                    m.d.comb += value.eq(_sext(shifted[:8]))
                                with m.Case(0b001):
                                    m.d.comb += value.eq(_sext(shifted[:16]))
                                with m.Case(0b100):
                                    m.d.comb += value.eq(shifted[:8])
                                with m.Case(0b101):
                                    m.d.comb += value.eq(shifted[:16])
                                with m.Default():
                                    m.d.comb += value.eq(shifted)
                            m.d.comb += [rd_port.en.eq(rd != 0), rd_port.data.eq(value)]
        return m

    def _execute(self, m: Module, s: dict) -> None:
        """Decode and execute the latched instruction (the EXECUTE state's logic)."""
        alu, csr, instr, pc = s["alu"], s["csr"], s["instr"], s["pc"]
        opcode, rd, f3, f7, rs1 = s["opcode"], s["rd"], s["f3"], s["f7"], s["rs1"]
        a, b, pc_plus4 = s["a"], s["b"], s["pc_plus4"]
        rd_port = s["rd_port"]
        trap, trap_cause, trap_tval = s["trap"], s["trap_cause"], s["trap_tval"]

        result = Signal(32)
        write_rd = Signal()
        next_pc = Signal(32)
        jump = Signal()  # next_pc is a jump or taken-branch target: check its alignment
        illegal = Signal()
        m.d.comb += next_pc.eq(pc_plus4)

        is_imm = opcode == Opcode.OP_IMM
        muldiv = s["muldiv"]
        is_muldiv = Const(0, 1)
        product = Const(0, 32)
        if muldiv is not None:
            is_muldiv = (opcode == Opcode.OP) & (f7 == 0b0000001) & self.m_enable
            product = muldiv.product
            m.d.comb += [muldiv.op.eq(f3), muldiv.a.eq(a), muldiv.b.eq(b)]
        m.d.comb += [alu.op.eq(f3), alu.a.eq(a), alu.b.eq(Mux(is_imm, s["imm_i"], b)),
                     alu.alt.eq(f7[5] & (~is_imm | (f3 == 0b101)))]

        taken = Signal()
        with m.Switch(f3[1:]):
            with m.Case(0b00):
                m.d.comb += taken.eq(a == b)
            with m.Case(0b10):
                m.d.comb += taken.eq(a.as_signed() < b.as_signed())
            with m.Case(0b11):
                m.d.comb += taken.eq(a < b)
        taken_final = taken ^ f3[0]

        mem_addr = a + Mux(opcode == Opcode.STORE, s["imm_s"], s["imm_i"])
        size = f3[:2]
        misaligned = ((size == 1) & mem_addr[0]) | ((size == 2) & (mem_addr[:2] != 0))

        csr_src = Mux(f3[2], rs1, a)
        csr_writes = (f3[:2] == 0b01) | (rs1 != 0)

        with m.Switch(opcode):
            with m.Case(Opcode.LUI):
                m.d.comb += [result.eq(s["imm_u"]), write_rd.eq(1)]
            with m.Case(Opcode.AUIPC):
                m.d.comb += [result.eq(pc + s["imm_u"]), write_rd.eq(1)]
            with m.Case(Opcode.JAL):
                m.d.comb += [result.eq(pc_plus4), write_rd.eq(1), jump.eq(1),
                             next_pc.eq(pc + s["imm_j"])]
            with m.Case(Opcode.JALR):
                m.d.comb += [result.eq(pc_plus4), write_rd.eq(1), jump.eq(1),
                             next_pc.eq(Cat(Const(0, 1), (a + s["imm_i"])[1:32])),
                             illegal.eq(f3 != 0)]
            with m.Case(Opcode.BRANCH):
                m.d.comb += illegal.eq(f3[1:] == 0b01)
                with m.If(taken_final):
                    m.d.comb += [jump.eq(1), next_pc.eq(pc + s["imm_b"])]
            with m.Case(Opcode.OP_IMM):
                shift_bad = ((f3 == 0b001) & (f7 != 0)) | \
                    ((f3 == 0b101) & (f7 != 0) & (f7 != 0b0100000))
                m.d.comb += [result.eq(alu.result), write_rd.eq(1), illegal.eq(shift_bad)]
            with m.Case(Opcode.OP):
                alt_ok = (f3 == 0b000) | (f3 == 0b101)
                m.d.comb += [result.eq(Mux(is_muldiv, product, alu.result)),
                             write_rd.eq(1),
                             illegal.eq((f7 != 0) & ~((f7 == 0b0100000) & alt_ok) &
                                        ~is_muldiv)]
            with m.Case(Opcode.LOAD):
                m.d.comb += illegal.eq((f3 == 0b011) | (f3[1:] == 0b11))
            with m.Case(Opcode.STORE):
                m.d.comb += illegal.eq(f3[2] | (f3 == 0b011))
            with m.Case(Opcode.MISC_MEM):
                m.d.comb += illegal.eq(f3[1:] != 0)
            with m.Case(Opcode.SYSTEM):
                m.d.comb += csr.addr.eq(instr[20:32])
                with m.If(f3 == 0):
                    m.d.comb += illegal.eq((instr != ECALL) & (instr != EBREAK) &
                                           (instr != MRET) & (instr != WFI))
                with m.Elif(f3 == 0b100):
                    m.d.comb += illegal.eq(1)
                with m.Else():
                    m.d.comb += [
                        illegal.eq(~csr.known | (csr_writes & csr.read_only)),
                        result.eq(csr.rdata), write_rd.eq(1),
                    ]
            with m.Default():
                m.d.comb += illegal.eq(1)

        is_system = opcode == Opcode.SYSTEM
        is_mem = (opcode == Opcode.LOAD) | (opcode == Opcode.STORE)
        with m.If(illegal | (instr[:2] != 0b11)):
            m.d.comb += [trap.eq(1), trap_cause.eq(Cause.ILLEGAL), trap_tval.eq(instr)]
        with m.Elif(is_system & (instr == ECALL)):
            m.d.comb += [trap.eq(1), trap_cause.eq(Cause.ECALL_M)]
        with m.Elif(is_system & (instr == EBREAK)):
            m.d.comb += [trap.eq(1), trap_cause.eq(Cause.BREAKPOINT)]
        with m.Elif(jump & next_pc[1]):
            m.d.comb += [trap.eq(1), trap_cause.eq(Cause.FETCH_MISALIGNED),
                         trap_tval.eq(next_pc)]
        with m.Elif(is_mem & misaligned):
            m.d.comb += [trap.eq(1), trap_tval.eq(mem_addr),
                         trap_cause.eq(Mux(opcode == Opcode.STORE, Cause.STORE_MISALIGNED,
                                           Cause.LOAD_MISALIGNED))]
        with m.Elif(is_mem):
            store = opcode == Opcode.STORE
            sel = Mux(size == 0, Const(1, 4) << mem_addr[:2],
                      Mux(size == 1, Const(0b11, 4) << Cat(Const(0, 1), mem_addr[1]),
                          Const(0b1111, 4)))
            wdata = Mux(size == 0, b[:8].replicate(4),
                        Mux(size == 1, b[:16].replicate(2), b))
            m.d.sync += [s["mem_addr"].eq(mem_addr), s["mem_we"].eq(store),
                         s["mem_sel"].eq(sel), s["mem_wdata"].eq(wdata)]
            m.next = "MEMORY"
        if muldiv is not None:
            with m.Elif(is_muldiv & f3[2]):
                m.d.comb += muldiv.start.eq(1)
                m.next = "DIVIDE"
        with m.Elif(is_system & (instr == MRET)):
            m.d.comb += [csr.mret.eq(1), csr.retire.eq(1)]
            m.d.sync += pc.eq(csr.mepc)
        with m.Else():
            m.d.comb += [csr.retire.eq(1), rd_port.en.eq(write_rd & (rd != 0)),
                         rd_port.data.eq(result)]
            m.d.sync += pc.eq(next_pc)
            with m.If(is_system & (f3 != 0) & csr_writes):
                m.d.comb += csr.we.eq(1)
                with m.Switch(f3[:2]):
                    with m.Case(0b01):
                        m.d.comb += csr.wdata.eq(csr_src)
                    with m.Case(0b10):
                        m.d.comb += csr.wdata.eq(csr.rdata | csr_src)
                    with m.Case(0b11):
                        m.d.comb += csr.wdata.eq(csr.rdata & ~csr_src)
