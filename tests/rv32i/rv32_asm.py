"""A tiny RV32I encoder for programs generated in tests (random streams, timing loops)."""

from __future__ import annotations

OPS = {  # name: (opcode, funct3, funct7)
    "add": (0x33, 0, 0), "sub": (0x33, 0, 0x20), "sll": (0x33, 1, 0), "slt": (0x33, 2, 0),
    "sltu": (0x33, 3, 0), "xor": (0x33, 4, 0), "srl": (0x33, 5, 0), "sra": (0x33, 5, 0x20),
    "or": (0x33, 6, 0), "and": (0x33, 7, 0),
}
M_OPS = {name: (0x33, f3, 1) for f3, name in enumerate(
    ["mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu"])}
OPS.update(M_OPS)
IMM_OPS = {"addi": 0, "slti": 2, "sltiu": 3, "xori": 4, "ori": 6, "andi": 7}
SHIFT_IMM = {"slli": (1, 0), "srli": (5, 0), "srai": (5, 0x20)}
LOADS = {"lb": 0, "lh": 1, "lw": 2, "lbu": 4, "lhu": 5}
STORES = {"sb": 0, "sh": 1, "sw": 2}
BRANCHES = {"beq": 0, "bne": 1, "blt": 4, "bge": 5, "bltu": 6, "bgeu": 7}
CSR_OPS = {"csrrw": 1, "csrrs": 2, "csrrc": 3, "csrrwi": 5, "csrrsi": 6, "csrrci": 7}


def r_type(name: str, rd: int, rs1: int, rs2: int) -> int:
    """OP instructions, the M extension's included."""
    opcode, f3, f7 = OPS[name]
    return f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opcode


def i_type(name: str, rd: int, rs1: int, imm: int) -> int:
    if name in SHIFT_IMM:
        f3, f7 = SHIFT_IMM[name]
        return f7 << 25 | (imm & 31) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | 0x13
    if name in LOADS:
        return (imm & 0xFFF) << 20 | rs1 << 15 | LOADS[name] << 12 | rd << 7 | 0x03
    if name == "jalr":
        return (imm & 0xFFF) << 20 | rs1 << 15 | rd << 7 | 0x67
    return (imm & 0xFFF) << 20 | rs1 << 15 | IMM_OPS[name] << 12 | rd << 7 | 0x13


def store(name: str, rs2: int, rs1: int, imm: int) -> int:
    imm &= 0xFFF
    return ((imm >> 5) << 25 | rs2 << 20 | rs1 << 15 | STORES[name] << 12 | (imm & 31) << 7
            | 0x23)


def branch(name: str, rs1: int, rs2: int, offset: int) -> int:
    o = offset & 0x1FFF
    return ((o >> 12 & 1) << 31 | (o >> 5 & 0x3F) << 25 | rs2 << 20 | rs1 << 15
            | BRANCHES[name] << 12 | (o >> 1 & 0xF) << 8 | (o >> 11 & 1) << 7 | 0x63)


def jal(rd: int, offset: int) -> int:
    o = offset & 0x1FFFFF
    return ((o >> 20 & 1) << 31 | (o >> 1 & 0x3FF) << 21 | (o >> 11 & 1) << 20
            | (o >> 12 & 0xFF) << 12 | rd << 7 | 0x6F)


def lui(rd: int, imm20: int) -> int:
    return (imm20 & 0xFFFFF) << 12 | rd << 7 | 0x37


def auipc(rd: int, imm20: int) -> int:
    return (imm20 & 0xFFFFF) << 12 | rd << 7 | 0x17


def csr(name: str, rd: int, src: int, addr: int) -> int:
    return addr << 20 | src << 15 | CSR_OPS[name] << 12 | rd << 7 | 0x73


def li(rd: int, value: int) -> list[int]:
    """lui + addi loading any 32-bit value."""
    value &= 0xFFFF_FFFF
    low = value & 0xFFF
    low = low - 0x1000 if low & 0x800 else low
    return [lui(rd, ((value - low) >> 12) & 0xFFFFF), i_type("addi", rd, rd, low)]


ECALL, EBREAK, MRET, WFI, FENCE = 0x73, 0x100073, 0x30200073, 0x10500073, 0x0FF0000F
