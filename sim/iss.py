"""An RV32I + Zicsr instruction-set simulator: the golden model of :mod:`qfab.hw.rv32i`.

It implements the same machine as the core and the SoC: the memory map of
:mod:`qfab.hw.soc.memory_map` (ROM read-only to the program, the sysctl console, exit and
cycle registers, an access fault for unmapped addresses), the same CSRs and the same traps
in the same order of priority. It also counts the cycles the multi-cycle core takes
(:data:`qfab.hw.rv32i.core.CYCLES_PER_CLASS`), so a test can check the documented timing
against Verilator as well as the architectural state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qfab.hw.rv32i.alu import MASK32, alu_reference
from qfab.hw.rv32i.isa import (
    EBREAK,
    ECALL,
    MISA_M,
    MISA_VALUE,
    MRET,
    MSTATUS_MPP,
    WFI,
    Cause,
    Csr,
    Opcode,
)
from qfab.hw.rv32i.muldiv import DIVIDE_CYCLES, MULTIPLY_CYCLES, muldiv_reference
from qfab.hw.soc.bus import IO_CYCLES
from qfab.hw.soc.memory import BUS_CYCLES
from qfab.hw.soc.memory_map import MEMORY_MAP, SYSCTL_REGISTERS, Region
from qfab.sim.elf import ElfImage

_SYSCTL = {reg.name: reg.offset for reg in SYSCTL_REGISTERS}


def _sext(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return (value - (1 << bits)) & MASK32 if value >> (bits - 1) else value


class _Trap(Exception):
    def __init__(self, cause: int, tval: int = 0) -> None:
        self.cause, self.tval = cause, tval


@dataclass
class IssResult:
    """Why :meth:`Iss.run` stopped: ``"exit"``, ``"tohost"`` or ``"limit"``, and the code."""

    reason: str
    code: int
    instructions: int
    cycles: int
    console: bytes = field(default=b"")


class Iss:
    """A machine-mode RV32I hart on the SoC memory map.

    Parameters
    ----------
    memory_map : tuple of Region
        Where ROM, RAM and sysctl sit.
    m_extension : bool
        Model the core built with the M extension.

    Members
    -------
    regs : list of int
        x0..x31 as unsigned 32-bit values.
    pc : int
    memories : dict of str to bytearray
        The contents of each ROM and RAM region, by region name.
    cycles, instret : int
        Cycle count of the hardware core and retired instructions.
    """

    def __init__(self, *, memory_map: tuple[Region, ...] = MEMORY_MAP,
                 m_extension: bool = False) -> None:
        self.memory_map = memory_map
        self.m_extension = m_extension
        self.memories = {r.name: bytearray(r.size) for r in memory_map if r.kind != "io"}
        self.regs = [0] * 32
        self.pc = 0
        self.cycles = 1  # the core loads its boot address in the cycle reset is released
        self.instret = 0
        self.cycle_offset = 0  # mcycle minus elapsed cycles, changed by writes to mcycle
        self.mie = self.mpie = 0
        self.mtvec = self.mepc = self.mcause = self.mtval = self.mscratch = 0
        self.console = bytearray()
        self.tohost: int | None = None
        self.stopped: tuple[str, int] | None = None

    def load(self, image: ElfImage) -> None:
        """Copy the ELF's segments into memory and start at its entry point."""
        for seg in image.segments:
            r = self._region(seg.addr)
            if r is None or r.kind == "io":
                raise ValueError(f"segment at {seg.addr:#x} is outside ROM and RAM")
            off = seg.addr - r.base
            self.memories[r.name][off:off + len(seg.data)] = seg.data
        self.pc = image.entry
        self.tohost = image.symbols.get("tohost")

    def _region(self, addr: int) -> Region | None:
        for r in self.memory_map:
            # Other io regions have no device, as on a SoC without an accelerator.
            if r.contains(addr) and (r.kind != "io" or r.name == "sysctl"):
                return r
        return None

    # Bus: one word access, like the SoC decoder and its targets.
    def read_word(self, addr: int) -> int | None:
        """The word at ``addr & ~3``, or None for a bus error."""
        addr &= ~3 & MASK32
        r = self._region(addr)
        if r is None:
            return None
        if r.kind == "io":
            off = addr - r.base
            if off == _SYSCTL["CYCLE_LO"]:
                return self.cycles & MASK32
            if off == _SYSCTL["CYCLE_HI"]:
                return self.cycles >> 32
            return 0
        return int.from_bytes(self.memories[r.name][addr - r.base:addr - r.base + 4], "little")

    def write_word(self, addr: int, data: int, sel: int) -> bool:
        """Store the byte lanes ``sel`` of ``data``; False for a bus error."""
        addr &= ~3 & MASK32
        r = self._region(addr)
        if r is None or r.kind == "rom":
            return False
        if r.kind == "io":
            off = addr - r.base
            if off == _SYSCTL["CONSOLE"]:
                self.console.append(data & 0xFF)
            elif off == _SYSCTL["EXIT"]:
                self.stopped = ("exit", data)
            return True
        mem, base = self.memories[r.name], addr - r.base
        for lane in range(4):
            if sel >> lane & 1:
                mem[base + lane] = data >> (8 * lane) & 0xFF
        return True

    def run(self, max_instructions: int) -> IssResult:
        """Step until the program stops (exit register, ``tohost``) or the limit."""
        n = 0
        while self.stopped is None and n < max_instructions:
            self.step()
            n += 1
        reason, code = self.stopped or ("limit", 0)
        return IssResult(reason, code, self.instret, self.cycles, bytes(self.console))

    def step(self) -> None:
        """Execute one instruction (or take one trap)."""
        pc = self.pc
        try:
            instr = self.read_word(pc)
            self._memory_cycles(pc)
            if instr is None:
                self.cycles += 1  # DECODE takes the trap
                raise _Trap(Cause.FETCH_FAULT, pc)
            self.cycles += 3  # DECODE, EXECUTE, WRITEBACK
            self._execute(instr)
        except _Trap as t:
            self.mepc, self.mcause, self.mtval = pc & ~3, t.cause, t.tval & MASK32
            self.mpie, self.mie = self.mie, 0
            self.pc = self.mtvec
            return
        self.instret += 1
        self.regs[0] = 0

    def _execute(self, instr: int) -> None:
        regs, pc = self.regs, self.pc
        op, rd, f3 = instr & 0x7F, instr >> 7 & 31, instr >> 12 & 7
        rs1, rs2, f7 = instr >> 15 & 31, instr >> 20 & 31, instr >> 25
        a, b = regs[rs1], regs[rs2]
        imm_i = _sext(instr >> 20, 12)
        imm_s = _sext((instr >> 25) << 5 | rd, 12)
        next_pc = (pc + 4) & MASK32
        illegal = _Trap(Cause.ILLEGAL, instr)
        if op == Opcode.LUI:
            regs[rd] = instr & 0xFFFFF000
        elif op == Opcode.AUIPC:
            regs[rd] = (pc + (instr & 0xFFFFF000)) & MASK32
        elif op in (Opcode.JAL, Opcode.JALR):
            if op == Opcode.JAL:
                imm = (instr >> 31 << 20 | (instr >> 12 & 0xFF) << 12 | (instr >> 20 & 1) << 11
                       | (instr >> 21 & 0x3FF) << 1)
                target = (pc + _sext(imm, 21)) & MASK32
            else:
                if f3:
                    raise illegal
                target = (a + imm_i) & MASK32 & ~1
            if target & 2:
                raise _Trap(Cause.FETCH_MISALIGNED, target)
            regs[rd] = next_pc
            next_pc = target
        elif op == Opcode.BRANCH:
            if f3 in (2, 3):
                raise illegal
            sa, sb = _sext(a, 32) ^ 0x8000_0000, _sext(b, 32) ^ 0x8000_0000
            taken = {0: a == b, 4: sa < sb, 6: a < b}[f3 & 6] ^ bool(f3 & 1)
            if taken:
                imm = (instr >> 31 << 12 | (instr >> 7 & 1) << 11 | (instr >> 25 & 0x3F) << 5
                       | (instr >> 8 & 0xF) << 1)
                target = (pc + _sext(imm, 13)) & MASK32
                if target & 2:
                    raise _Trap(Cause.FETCH_MISALIGNED, target)
                next_pc = target
        elif op == Opcode.OP_IMM:
            if (f3 == 1 and f7) or (f3 == 5 and f7 not in (0, 0x20)):
                raise illegal
            regs[rd] = alu_reference(f3, f3 == 5 and f7 == 0x20, a, imm_i)
        elif op == Opcode.OP and f7 == 1 and self.m_extension:
            regs[rd] = muldiv_reference(f3, a, b)
            self.cycles += DIVIDE_CYCLES if f3 & 4 else MULTIPLY_CYCLES
        elif op == Opcode.OP:
            if f7 and not (f7 == 0x20 and f3 in (0, 5)):
                raise illegal
            regs[rd] = alu_reference(f3, f7 == 0x20, a, b)
        elif op == Opcode.LOAD:
            if f3 in (3, 6, 7):
                raise illegal
            regs[rd] = self._load(f3, (a + imm_i) & MASK32, regs[rd])
        elif op == Opcode.STORE:
            if f3 > 2:
                raise illegal
            self._store(f3, (a + imm_s) & MASK32, b)
        elif op == Opcode.MISC_MEM:
            if f3 > 1:
                raise illegal
        elif op == Opcode.SYSTEM:
            next_pc = self._system(instr, f3, rd, rs1, a, next_pc)
        else:
            raise illegal
        self.pc = next_pc

    def _load(self, f3: int, addr: int, old: int) -> int:
        size = f3 & 3
        if (size == 1 and addr & 1) or (size == 2 and addr & 3):
            raise _Trap(Cause.LOAD_MISALIGNED, addr)
        word = self.read_word(addr)
        self._memory_cycles(addr)
        self.cycles += 1  # MEMDONE
        if word is None:
            raise _Trap(Cause.LOAD_FAULT, addr)
        shifted = word >> (8 * (addr & 3))
        bits = (8, 16, 32)[size]
        return shifted & ((1 << bits) - 1) if f3 & 4 or size == 2 else _sext(shifted, bits)

    def _memory_cycles(self, addr: int) -> None:
        """The cycles of one bus access (FETCH, MEMORY): the memories answer in
        BUS_CYCLES, the peripherals in IO_CYCLES, and the decoder refuses an unmapped
        address at once."""
        r = self._region(addr & ~3 & MASK32)
        self.cycles += 1 if r is None else IO_CYCLES if r.kind == "io" else BUS_CYCLES

    def _store(self, f3: int, addr: int, value: int) -> None:
        if (f3 == 1 and addr & 1) or (f3 == 2 and addr & 3):
            raise _Trap(Cause.STORE_MISALIGNED, addr)
        self._memory_cycles(addr)
        if f3 == 0:
            data, sel = (value & 0xFF) * 0x01010101, 1 << (addr & 3)
        elif f3 == 1:
            data, sel = (value & 0xFFFF) * 0x00010001, 0b11 << (addr & 2)
        else:
            data, sel = value, 0b1111
        if not self.write_word(addr, data, sel):
            self.cycles += 1  # MEMDONE takes the access fault
            raise _Trap(Cause.STORE_FAULT, addr)
        if self.tohost is not None and addr & ~3 == self.tohost and data:
            self.stopped = ("tohost", data)
        # MEMDONE, unless the store ended the run: a harness stops at its bus cycle.
        self.cycles += self.stopped is None

    def _system(self, instr: int, f3: int, rd: int, rs1: int, a: int, next_pc: int) -> int:
        if f3 == 0:
            if instr == ECALL:
                raise _Trap(Cause.ECALL_M)
            if instr == EBREAK:
                raise _Trap(Cause.BREAKPOINT)
            if instr == MRET:
                self.mie, self.mpie = self.mpie, 1
                return self.mepc
            if instr == WFI:
                return next_pc
            raise _Trap(Cause.ILLEGAL, instr)
        if f3 == 4:
            raise _Trap(Cause.ILLEGAL, instr)
        addr = instr >> 20
        old = self.read_csr(addr)
        writes = (f3 & 3) == 1 or rs1 != 0
        if old is None or (writes and addr >> 10 == 0b11):
            raise _Trap(Cause.ILLEGAL, instr)
        src = rs1 if f3 & 4 else a
        if writes:
            new = {1: src, 2: old | src, 3: old & ~src & MASK32}[f3 & 3]
            self.write_csr(addr, new)
        self.regs[rd] = old
        return next_pc

    def read_csr(self, addr: int) -> int | None:
        """The value of CSR ``addr``, or None when the core does not implement it."""
        # Read in WRITEBACK, the instruction's last cycle, which self.cycles already counts.
        cyc, ins = self.cycles - 1 + self.cycle_offset, self.instret
        values = {
            Csr.MSTATUS: self.mie << 3 | self.mpie << 7 | MSTATUS_MPP,
            Csr.MISA: MISA_VALUE | (MISA_M if self.m_extension else 0),
            Csr.MIE: 0, Csr.MIP: 0, Csr.MTVEC: self.mtvec, Csr.MSCRATCH: self.mscratch,
            Csr.MEPC: self.mepc, Csr.MCAUSE: self.mcause, Csr.MTVAL: self.mtval,
            Csr.MCYCLE: cyc, Csr.CYCLE: cyc, Csr.TIME: cyc, Csr.MCYCLEH: cyc >> 32,
            Csr.CYCLEH: cyc >> 32, Csr.TIMEH: cyc >> 32, Csr.MINSTRET: ins, Csr.INSTRET: ins,
            Csr.MINSTRETH: ins >> 32, Csr.INSTRETH: ins >> 32, Csr.MVENDORID: 0,
            Csr.MARCHID: 0, Csr.MIMPID: 0, Csr.MHARTID: 0,
        }
        value = values.get(addr)
        return None if value is None else value & MASK32

    def write_csr(self, addr: int, value: int) -> None:
        """Write a writable CSR (others ignore the write, as in the core)."""
        if addr == Csr.MSTATUS:
            self.mie, self.mpie = value >> 3 & 1, value >> 7 & 1
        elif addr == Csr.MTVEC:
            self.mtvec = value & ~3 & MASK32
        elif addr == Csr.MSCRATCH:
            self.mscratch = value
        elif addr == Csr.MEPC:
            self.mepc = value & ~3 & MASK32
        elif addr == Csr.MCAUSE:
            self.mcause = value
        elif addr == Csr.MTVAL:
            self.mtval = value
        elif addr in (Csr.MCYCLE, Csr.MCYCLEH):
            # The written half is what the counter holds in the next cycle; the other half
            # keeps counting.
            now = self.cycles - 1 + self.cycle_offset
            after = now + 1
            after = ((after >> 32 << 32) | value if addr == Csr.MCYCLE
                     else value << 32 | (after & MASK32))
            self.cycle_offset += after - (now + 1)
        elif addr == Csr.MINSTRET:
            self.instret = (self.instret >> 32 << 32) | value
            self.instret -= 1  # the writing instruction's own retirement does not count
        elif addr == Csr.MINSTRETH:
            self.instret = (value << 32 | (self.instret & MASK32)) - 1
