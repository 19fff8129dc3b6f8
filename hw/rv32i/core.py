"""A multi-cycle RV32I + Zicsr core (machine mode only, no interrupts), every stage boundary
registered so that it closes timing at 100 MHz on an ECP5 (speed grade 6).

States: FETCH (request the word at ``pc``; on ``ready`` latch it), DECODE (read the
register file, decode the instruction and select its immediate and the ALU's second operand,
the immediate of OP-IMM or rs2, into registers), EXECUTE (ALU result, SLT/SLTU's comparison
in a register of its own, branch decision, jump target and memory address into registers;
one adder adds, subtracts and compares), WRITEBACK (trap
priority, write rd, the CSR access, the next ``pc``; or go on to a memory access, a multiply
or a divide), then, for loads and stores, MEMORY (the bus access; the word read and the bus
error are latched) and MEMDONE (write the loaded value or take the access fault). No path
goes from a memory's read data, the ALU or the branch comparator to the program counter, the
register file or a CSR in one cycle. With the on-chip memories of
:mod:`qfab.hw.soc.memory` an instruction takes

=====================================================  ======
class                                                  cycles
=====================================================  ======
ALU, LUI/AUIPC, branch (taken or not), JAL/JALR, CSR   7
load, store                                            12
trap entry (ecall, ebreak, illegal, misaligned), mret  7
MUL, MULH, MULHSU, MULHU (with ``m_extension``)        8
DIV, DIVU, REM, REMU (with ``m_extension``)            40
=====================================================  ======

(the memories answer in ``BUS_CYCLES`` = 4), one fewer for a load or store to a peripheral
(``sysctl``, the streamer), which answers in ``IO_CYCLES`` = 3. A fetch from an unmapped
address (which the bus refuses at once) takes two cycles to its trap, a load or store there
nine. Misaligned loads and stores, and jumps or taken branches to a target that is not
4-byte aligned, trap (mtval holds the address); a bus error traps as an access fault.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from qfab.hw.rv32i.alu import Alu
from qfab.hw.rv32i.csr import CsrFile
from qfab.hw.rv32i.isa import EBREAK, ECALL, MRET, WFI, Cause, Opcode
from qfab.hw.rv32i.muldiv import DIVIDE_CYCLES, MULTIPLY_CYCLES, MulDiv
from qfab.hw.soc.bus import BusSignature
from qfab.hw.soc.memory import BUS_CYCLES

# FETCH (the on-chip memory's BUS_CYCLES), DECODE, EXECUTE, WRITEBACK; a load or store
# adds MEMORY (BUS_CYCLES again) and MEMDONE.
_BASE = BUS_CYCLES + 3
CYCLES_PER_CLASS = {"alu": _BASE, "branch": _BASE, "jump": _BASE, "csr": _BASE,
                    "load": _BASE + BUS_CYCLES + 1, "store": _BASE + BUS_CYCLES + 1,
                    "trap": _BASE, "mul": _BASE + MULTIPLY_CYCLES,
                    "div": _BASE + DIVIDE_CYCLES}


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
        muldiv = None
        if self._m_extension:
            m.d.comb += csr.m_enable.eq(self.m_enable)
            m.submodules.muldiv = muldiv = MulDiv()
        m.submodules.regs = regs = Memory(shape=32, depth=32, init=[])
        rs1_port = regs.read_port()
        rs2_port = regs.read_port(domain="comb")
        rd_port = regs.write_port()

        pc = Signal(32)
        instr = Signal(32)
        started = Signal()
        with m.If(~started):
            m.d.sync += [pc.eq(self.boot_addr), started.eq(1)]

        opcode, rd, f3 = instr[:7], instr[7:12], instr[12:15]
        rs1, f7 = instr[15:20], instr[25:32]
        # b is the ALU's second operand, selected in DECODE: the immediate of OP-IMM, else
        # rs2 (which a branch compares, a store writes and M multiplies).
        a, b = rs1_port.data, Signal(32)
        pc_plus4 = Signal(32)
        m.d.comb += pc_plus4.eq(pc + 4)

        # DECODE -> EXECUTE / WRITEBACK: what the instruction is, as registered flags.
        d = {name: Signal(name=f"is_{name}") for name in (
            "lui", "auipc", "jal", "jalr", "branch", "op", "load", "store",
            "system", "csr", "ecall", "ebreak", "mret", "mul", "div", "csr_writes",
            "writes_rd", "alu", "slt", "sub", "unsigned", "illegal")}
        imm = Signal(32)
        alt = Signal()
        early_result = Signal(32)
        # EXECUTE -> WRITEBACK.
        result = Signal(32)
        less = Signal()             # SLT, SLTU: bit 0 of rd, registered apart from result
        csr_value = Signal(32)      # the CSR read, as WRITEBACK sees it
        target = Signal(32)
        take = Signal()             # a jump or a taken branch: pc <= target
        mem_addr = Signal(32)
        # WRITEBACK -> MEMORY -> MEMDONE.
        mem_we = Signal()
        mem_sel = Signal(4)
        mem_wdata = Signal(32)
        mem_rdata = Signal(32)
        mem_err = Signal()

        trap = Signal()
        trap_cause = Signal(5)
        trap_tval = Signal(32)
        m.d.comb += [csr.trap.eq(trap), csr.trap_pc.eq(pc), csr.trap_cause.eq(trap_cause),
                     csr.trap_tval.eq(trap_tval), csr.addr.eq(instr[20:32])]
        with m.If(trap):
            m.d.sync += pc.eq(csr.mtvec)
        m.d.comb += [rs1_port.en.eq(0), rd_port.addr.eq(rd),
                     rs1_port.addr.eq(rs1), rs2_port.addr.eq(instr[20:25])]

        # EXECUTE's datapath is driven in every state, so that the state register only
        # enables the registers at its end and does not lead every path through it.
        m.d.comb += [alu.op.eq(f3), alu.a.eq(a), alu.b.eq(b),
                     alu.alt.eq(alt), alu.sub.eq(d["sub"]), alu.unsigned.eq(d["unsigned"])]
        pc_plus_imm = Signal(32)
        a_plus_imm = Signal(32)
        m.d.comb += [pc_plus_imm.eq(pc + imm), a_plus_imm.eq(a + imm)]
        # A branch compares on the ALU's adder (BLT..BGEU) or its equality (BEQ, BNE).
        taken = Mux(f3[2], alu.less, alu.equal)

        with m.FSM():
            with m.State("FETCH"):
                m.d.comb += [self.bus.valid.eq(started), self.bus.addr.eq(pc),
                             self.bus.sel.eq(0b1111)]
                # The word is latched in every cycle of FETCH (the one of ``ready`` last), so
                # that ``ready`` enables no instruction register.
                m.d.sync += [instr.eq(self.bus.rdata), mem_err.eq(self.bus.err)]
                with m.If(self.bus.valid & self.bus.ready):
                    m.next = "DECODE"

            with m.State("DECODE"):
                with m.If(mem_err):
                    # The fetch faulted: instr holds no instruction.
                    m.d.comb += [trap.eq(1), trap_cause.eq(Cause.FETCH_FAULT),
                                 trap_tval.eq(pc)]
                    m.d.sync += mem_err.eq(0)
                    m.next = "FETCH"
                with m.Else():
                    m.d.comb += rs1_port.en.eq(1)
                    m.d.sync += b.eq(Mux(opcode == Opcode.OP_IMM, _sext(instr[20:32]),
                                         rs2_port.data))
                    self._decode(m, instr, csr, d, imm, alt)
                    # What LUI, AUIPC, JAL and JALR write needs no register operand.
                    m.d.sync += early_result.eq(
                        Mux(opcode == Opcode.LUI, Cat(Const(0, 12), instr[12:32]),
                            Mux(opcode == Opcode.AUIPC, pc + Cat(Const(0, 12), instr[12:32]),
                                pc_plus4)))
                    m.next = "EXECUTE"

            with m.State("EXECUTE"):
                m.d.sync += [
                    result.eq(Mux(d["alu"], alu.result, early_result)),
                    less.eq(d["slt"] & alu.less),
                    csr_value.eq(csr.rdata),
                    target.eq(Mux(d["jalr"], Cat(Const(0, 1), a_plus_imm[1:]), pc_plus_imm)),
                    take.eq(d["jal"] | d["jalr"] | (d["branch"] & (taken ^ f3[0]))),
                    mem_addr.eq(a_plus_imm),
                ]
                m.next = "WRITEBACK"

            with m.State("WRITEBACK"):
                m.next = "FETCH"
                self._writeback(m, locals())

            if muldiv is not None:
                with m.State("MULTIPLY"):
                    m.d.comb += [csr.retire.eq(1), rd_port.en.eq(rd != 0),
                                 rd_port.data.eq(muldiv.product)]
                    m.d.sync += pc.eq(pc_plus4)
                    m.next = "FETCH"

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
                    m.d.sync += [mem_rdata.eq(self.bus.rdata), mem_err.eq(self.bus.err)]
                    m.next = "MEMDONE"

            with m.State("MEMDONE"):
                m.next = "FETCH"
                with m.If(mem_err):
                    m.d.sync += mem_err.eq(0)
                    m.d.comb += [trap.eq(1), trap_tval.eq(mem_addr),
                                 trap_cause.eq(Mux(mem_we, Cause.STORE_FAULT,
                                                   Cause.LOAD_FAULT))]
                with m.Else():
                    m.d.comb += csr.retire.eq(1)
                    m.d.sync += pc.eq(pc_plus4)
                    with m.If(~mem_we):
                        shifted = mem_rdata >> Cat(Const(0, 3), mem_addr[:2])
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
        if muldiv is not None:
            m.d.comb += [muldiv.op.eq(f3), muldiv.a.eq(a), muldiv.b.eq(b)]
        return m

    def _decode(self, m: Module, instr, csr: CsrFile, d: dict, imm, alt) -> None:
        """Register what the instruction is (DECODE's logic): one flag a class, its
        immediate, the ALU's alternative operation and whether it is illegal."""
        opcode, f3, rs1, f7 = instr[:7], instr[12:15], instr[15:20], instr[25:32]
        is_op = opcode == Opcode.OP
        is_muldiv = Const(0, 1)
        if self._m_extension:
            is_muldiv = is_op & (f7 == 0b0000001) & self.m_enable
        is_imm = opcode == Opcode.OP_IMM
        is_system = opcode == Opcode.SYSTEM
        csr_writes = (f3[:2] == 0b01) | (rs1 != 0)
        illegal = Signal()
        with m.Switch(opcode):
            with m.Case(Opcode.LUI, Opcode.AUIPC, Opcode.JAL):
                pass
            with m.Case(Opcode.JALR):
                m.d.comb += illegal.eq(f3 != 0)
            with m.Case(Opcode.BRANCH):
                m.d.comb += illegal.eq(f3[1:] == 0b01)
            with m.Case(Opcode.OP_IMM):
                m.d.comb += illegal.eq(((f3 == 0b001) & (f7 != 0)) |
                                       ((f3 == 0b101) & (f7 != 0) & (f7 != 0b0100000)))
            with m.Case(Opcode.OP):
                alt_ok = (f3 == 0b000) | (f3 == 0b101)
                m.d.comb += illegal.eq((f7 != 0) & ~((f7 == 0b0100000) & alt_ok) & ~is_muldiv)
            with m.Case(Opcode.LOAD):
                m.d.comb += illegal.eq((f3 == 0b011) | (f3[1:] == 0b11))
            with m.Case(Opcode.STORE):
                m.d.comb += illegal.eq(f3[2] | (f3 == 0b011))
            with m.Case(Opcode.MISC_MEM):
                m.d.comb += illegal.eq(f3[1:] != 0)
            with m.Case(Opcode.SYSTEM):
                with m.If(f3 == 0):
                    m.d.comb += illegal.eq((instr != ECALL) & (instr != EBREAK) &
                                           (instr != MRET) & (instr != WFI))
                with m.Elif(f3 == 0b100):
                    m.d.comb += illegal.eq(1)
                with m.Else():
                    m.d.comb += illegal.eq(~csr.known | (csr_writes & csr.read_only))
            with m.Default():
                m.d.comb += illegal.eq(1)

        imm_i = _sext(instr[20:32])
        imm_s = _sext(Cat(instr[7:12], instr[25:32]))
        imm_b = _sext(Cat(Const(0, 1), instr[8:12], instr[25:31], instr[7], instr[31]))
        imm_u = Cat(Const(0, 12), instr[12:32])
        imm_j = _sext(Cat(Const(0, 1), instr[21:31], instr[20], instr[12:20], instr[31]))
        with m.Switch(opcode):
            with m.Case(Opcode.STORE):
                m.d.sync += imm.eq(imm_s)
            with m.Case(Opcode.BRANCH):
                m.d.sync += imm.eq(imm_b)
            with m.Case(Opcode.LUI, Opcode.AUIPC):
                m.d.sync += imm.eq(imm_u)
            with m.Case(Opcode.JAL):
                m.d.sync += imm.eq(imm_j)
            with m.Default():
                m.d.sync += imm.eq(imm_i)
        is_alu = is_imm | is_op
        is_slt = is_alu & (f3[1:] == 0b01)
        is_sub = is_op & (f3 == 0) & f7[5]
        m.d.sync += [
            alt.eq(f7[5] & (~is_imm | (f3 == 0b101))),
            d["slt"].eq(is_slt), d["sub"].eq(is_sub | is_slt | (opcode == Opcode.BRANCH)),
            d["unsigned"].eq(Mux(opcode == Opcode.BRANCH, f3[1], f3[0])),
            d["lui"].eq(opcode == Opcode.LUI), d["auipc"].eq(opcode == Opcode.AUIPC),
            d["jal"].eq(opcode == Opcode.JAL), d["jalr"].eq(opcode == Opcode.JALR),
            d["branch"].eq(opcode == Opcode.BRANCH),
            d["op"].eq(is_op), d["load"].eq(opcode == Opcode.LOAD),
            d["store"].eq(opcode == Opcode.STORE), d["system"].eq(is_system),
            d["csr"].eq(is_system & (f3 != 0)),
            d["ecall"].eq(is_system & (instr == ECALL)),
            d["ebreak"].eq(is_system & (instr == EBREAK)),
            d["mret"].eq(is_system & (instr == MRET)),
            d["mul"].eq(is_muldiv & ~f3[2]), d["div"].eq(is_muldiv & f3[2]),
            d["csr_writes"].eq(csr_writes),
            d["alu"].eq(is_alu),
            d["writes_rd"].eq(is_imm | is_op | (is_system & (f3 != 0)) |
                              (opcode == Opcode.LUI) | (opcode == Opcode.AUIPC) |
                              (opcode == Opcode.JAL) | (opcode == Opcode.JALR)),
            d["illegal"].eq(illegal | (instr[:2] != 0b11)),
        ]

    def _writeback(self, m: Module, s: dict) -> None:
        """Take the trap, start the memory access, multiply or divide, or retire the
        instruction (WRITEBACK's logic), from the registers DECODE and EXECUTE filled."""
        csr, d, instr, pc, rd = s["csr"], s["d"], s["instr"], s["pc"], s["rd"]
        f3, rs1, a, b = s["f3"], s["rs1"], s["a"], s["b"]
        mem_addr, target, take = s["mem_addr"], s["target"], s["take"]
        rd_port, muldiv = s["rd_port"], s["muldiv"]
        trap, trap_cause, trap_tval = s["trap"], s["trap_cause"], s["trap_tval"]
        size = f3[:2]
        misaligned = ((size == 1) & mem_addr[0]) | ((size == 2) & (mem_addr[:2] != 0))
        is_mem = d["load"] | d["store"]
        with m.If(d["illegal"]):
            m.d.comb += [trap.eq(1), trap_cause.eq(Cause.ILLEGAL), trap_tval.eq(instr)]
        with m.Elif(d["ecall"]):
            m.d.comb += [trap.eq(1), trap_cause.eq(Cause.ECALL_M)]
        with m.Elif(d["ebreak"]):
            m.d.comb += [trap.eq(1), trap_cause.eq(Cause.BREAKPOINT)]
        with m.Elif(take & target[1]):
            m.d.comb += [trap.eq(1), trap_cause.eq(Cause.FETCH_MISALIGNED),
                         trap_tval.eq(target)]
        with m.Elif(is_mem & misaligned):
            m.d.comb += [trap.eq(1), trap_tval.eq(mem_addr),
                         trap_cause.eq(Mux(d["store"], Cause.STORE_MISALIGNED,
                                           Cause.LOAD_MISALIGNED))]
        with m.Elif(is_mem):
            sel = Mux(size == 0, Const(1, 4) << mem_addr[:2],
                      Mux(size == 1, Const(0b11, 4) << Cat(Const(0, 1), mem_addr[1]),
                          Const(0b1111, 4)))
            wdata = Mux(size == 0, b[:8].replicate(4),
                        Mux(size == 1, b[:16].replicate(2), b))
            m.d.sync += [s["mem_we"].eq(d["store"]), s["mem_sel"].eq(sel),
                         s["mem_wdata"].eq(wdata)]
            m.next = "MEMORY"
        if muldiv is not None:
            with m.Elif(d["mul"]):
                m.next = "MULTIPLY"
            with m.Elif(d["div"]):
                m.d.comb += muldiv.start.eq(1)
                m.next = "DIVIDE"
        with m.Elif(d["mret"]):
            m.d.comb += [csr.mret.eq(1), csr.retire.eq(1)]
            m.d.sync += pc.eq(csr.mepc)
        with m.Else():
            m.d.comb += [csr.retire.eq(1),
                         rd_port.en.eq(d["writes_rd"] & (rd != 0)),
                         rd_port.data.eq(Mux(d["csr"], s["csr_value"], s["result"] | s["less"]))]
            m.d.sync += pc.eq(Mux(take, target, s["pc_plus4"]))
            with m.If(d["csr"] & d["csr_writes"]):
                csr_src = Mux(f3[2], rs1, a)
                m.d.comb += csr.we.eq(1)
                with m.Switch(f3[:2]):
                    with m.Case(0b01):
                        m.d.comb += csr.wdata.eq(csr_src)
                    with m.Case(0b10):
                        m.d.comb += csr.wdata.eq(s["csr_value"] | csr_src)
                    with m.Case(0b11):
                        m.d.comb += csr.wdata.eq(s["csr_value"] & ~csr_src)
