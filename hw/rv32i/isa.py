"""RV32I + Zicsr encoding constants shared by the core and the instruction-set simulator."""

from __future__ import annotations

from enum import IntEnum


class Opcode(IntEnum):
    """Bits [6:0] of an instruction."""

    LOAD = 0b0000011
    MISC_MEM = 0b0001111
    OP_IMM = 0b0010011
    AUIPC = 0b0010111
    STORE = 0b0100011
    OP = 0b0110011
    LUI = 0b0110111
    BRANCH = 0b1100011
    JALR = 0b1100111
    JAL = 0b1101111
    SYSTEM = 0b1110011


class AluOp(IntEnum):
    """funct3 of OP / OP-IMM; funct7 bit 5 selects SUB and SRA."""

    ADD = 0b000
    SLL = 0b001
    SLT = 0b010
    SLTU = 0b011
    XOR = 0b100
    SR = 0b101
    OR = 0b110
    AND = 0b111


class Cause(IntEnum):
    """mcause values for the synchronous exceptions this core raises."""

    FETCH_MISALIGNED = 0
    FETCH_FAULT = 1
    ILLEGAL = 2
    BREAKPOINT = 3
    LOAD_MISALIGNED = 4
    LOAD_FAULT = 5
    STORE_MISALIGNED = 6
    STORE_FAULT = 7
    ECALL_M = 11


class Csr(IntEnum):
    """CSR addresses the core implements; any other address is an illegal instruction."""

    MSTATUS = 0x300
    MISA = 0x301
    MIE = 0x304
    MTVEC = 0x305
    MSCRATCH = 0x340
    MEPC = 0x341
    MCAUSE = 0x342
    MTVAL = 0x343
    MIP = 0x344
    MCYCLE = 0xB00
    MINSTRET = 0xB02
    MCYCLEH = 0xB80
    MINSTRETH = 0xB82
    CYCLE = 0xC00
    TIME = 0xC01
    INSTRET = 0xC02
    CYCLEH = 0xC80
    TIMEH = 0xC81
    INSTRETH = 0xC82
    MVENDORID = 0xF11
    MARCHID = 0xF12
    MIMPID = 0xF13
    MHARTID = 0xF14


# misa: MXL = 1 (32-bit), extension I.
MISA_VALUE = (1 << 30) | (1 << 8)
MISA_M = 1 << 12
# mstatus: only MIE (bit 3) and MPIE (bit 7) are kept; MPP reads as M-mode (0b11 << 11).
MSTATUS_MASK = (1 << 3) | (1 << 7)
MSTATUS_MPP = 0b11 << 11

ECALL = 0x00000073
EBREAK = 0x00100073
MRET = 0x30200073
WFI = 0x10500073
