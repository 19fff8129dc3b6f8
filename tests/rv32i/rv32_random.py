"""Random RV32I programs that always end: forward-only control flow and a trap handler
that logs (mcause, mtval) and skips the faulting instruction.

Register use: x28 points at the data area and x31 at the trap log (both never written by
the random body); the handler clobbers x29 and x30, which the body may also use. The
epilogue stores x1..x31 after the data so the final registers become memory to compare.
"""

from __future__ import annotations

import random

import rv32_asm as A
from qfab.hw.soc.memory_map import region
from qfab.sim.elf import Segment

RAM = region("ram").base
CODE = RAM
DATA = RAM + 0x1_0000  # 1 KiB of random words
DATA_WORDS = 256
REGDUMP = DATA + 4 * DATA_WORDS  # x0..x31
TRAPLOG = REGDUMP + 4 * 32  # (mcause, mtval) pairs
TRAPLOG_WORDS = 512
COMPARE_WORDS = DATA_WORDS + 32 + TRAPLOG_WORDS
HANDLER = CODE + 0x8000
EXIT_REG = 0x4000_0004

WRITABLE = [*range(1, 28), 29, 30]
CORNER_IMMS = [0, 1, -1, 2047, -2048, 31, 32, 0x555, -0x556]
CORNER_VALUES = [0, 1, 0xFFFF_FFFF, 0x8000_0000, 0x7FFF_FFFF, 0x0000_FFFF, 0xFFFF_8000,
                 0x80, 0x7F, 31, 32]
READ_CSRS = [0x300, 0x301, 0x340, 0x341, 0x342, 0x343, 0x305, 0xF14, 0xB02, 0xC02, 0x344,
             0xB00, 0xC00, 0xB80]


def _handler() -> list[int]:
    return [
        A.csr("csrrs", 29, 0, 0x342), A.csr("csrrs", 30, 0, 0x343),
        A.store("sw", 29, 31, 0), A.store("sw", 30, 31, 4), A.i_type("addi", 31, 31, 8),
        A.csr("csrrs", 29, 0, 0x341), A.i_type("addi", 29, 29, 4), A.csr("csrrw", 0, 29, 0x341),
        A.MRET,
    ]


BASE_OPS = [name for name in A.OPS if name not in A.M_OPS]


def _body(rng: random.Random, n: int, m_extension: bool) -> list[int]:
    """About n instructions. Forward jumps skip whole items (an auipc/jalr pair is one
    item, so nothing lands between its halves) and land inside the body or at its end."""
    items: list = []  # each: list of words, or (encode(offset), items to skip, misalign)
    while len(items) < n:
        left = n - len(items)
        kind = rng.choices(
            ["op", "imm", "shift", "upper", "load", "store", "branch", "jal", "jalr", "csr",
             "system", "fault", "illegal"],
            weights=[14, 12, 6, 4, 10, 8, 10, 3, 3, 4, 2, 2, 1])[0]
        if kind == "op" and m_extension and rng.random() < 0.4:
            kind = "muldiv"
        rd, rs1, rs2 = rng.choice(WRITABLE), rng.randrange(32), rng.randrange(32)
        imm = rng.choice(CORNER_IMMS) if rng.random() < 0.3 else rng.randrange(-2048, 2048)
        skip = rng.randrange(1, min(left, 6) + 1)
        misalign = 2 if rng.random() < 0.1 else 0
        if kind == "op":
            items.append([A.r_type(rng.choice(BASE_OPS), rd, rs1, rs2)])
        elif kind == "muldiv":
            items.append([A.r_type(rng.choice(list(A.M_OPS)), rd, rs1, rs2)])
        elif kind == "imm":
            items.append([A.i_type(rng.choice(list(A.IMM_OPS)), rd, rs1, imm)])
        elif kind == "shift":
            sh = rng.choice([0, 1, 31, rng.randrange(32)])
            items.append([A.i_type(rng.choice(list(A.SHIFT_IMM)), rd, rs1, sh)])
        elif kind == "upper":
            f = A.lui if rng.random() < 0.5 else A.auipc
            items.append([f(rd, rng.choice([0, 0xFFFFF, 0x80000, rng.randrange(1 << 20)]))])
        elif kind == "load":
            off = rng.randrange(0, 4 * DATA_WORDS - 4) if rng.random() < 0.9 else imm
            items.append([A.i_type(rng.choice(list(A.LOADS)), rd, 28, off)])
        elif kind == "store":
            off = rng.randrange(0, 4 * DATA_WORDS - 4)
            items.append([A.store(rng.choice(list(A.STORES)), rs2, 28, off)])
        elif kind == "branch":
            name = rng.choice(list(A.BRANCHES))
            items.append((lambda o, name=name, a=rs1, b=rs2: [A.branch(name, a, b, o)],
                          skip, misalign))
        elif kind == "jal":
            link = rng.choice([0, rd])
            items.append((lambda o, link=link: [A.jal(link, o)], skip, misalign))
        elif kind == "jalr":
            # auipc rX, 0 ; jalr rd, off(rX): the offset counts from the auipc. Bit 0 of the
            # target is dropped by jalr; bit 1 traps.
            base = rng.choice(WRITABLE)
            low = rng.choice([0, 0, 0, 1, 2, 3])
            items.append((lambda o, base=base, rd=rd, low=low:
                          [A.auipc(base, 0), A.i_type("jalr", rd, base, o + low)], skip, 0))
        elif kind == "csr":
            name = rng.choice(list(A.CSR_OPS))
            target = rng.choice([0x340, 0x340, *READ_CSRS])
            src = rs1 if target == 0x340 else rng.choice([0, rs1])
            if target == 0x305:  # keep the trap handler reachable
                name, src = "csrrs", 0
            items.append([A.csr(name, rd, src, target)])
        elif kind == "system":
            items.append([rng.choice([A.ECALL, A.EBREAK, A.WFI, A.FENCE])])
        elif kind == "fault":
            # ROM refuses stores; the top of the address space is unmapped.
            items.append([rng.choice([A.store("sw", rs2, 0, 0x40), A.i_type("lw", rd, 0, -4),
                                      A.store("sb", rs2, 0, -1),
                                      A.i_type("lbu", rd, 0, 0x7F0)])])
        elif kind == "illegal":
            items.append([rng.choice([0, 0xFFFF_FFFF, 0x0000_7003, 0x0400_0033, 0x0000_2063,
                                      A.csr("csrrw", rd, rs1, 0xC00),
                                      A.csr("csrrs", rd, 0, 0x7C0)])])
    sizes = [len(it) if isinstance(it, list) else (2 if it[0](0)[1:] else 1) for it in items]
    starts = [0]
    for size in sizes:
        starts.append(starts[-1] + size)
    words: list[int] = []
    for i, it in enumerate(items):
        if isinstance(it, list):
            words += it
        else:
            encode, skip, misalign = it
            words += encode(4 * (starts[i + skip] - starts[i]) + misalign)
    return words


def random_program(seed: int, n: int = 200,
                   m_extension: bool = False) -> tuple[int, tuple[Segment, ...]]:
    """(entry, segments) of one random program (using M instructions if ``m_extension``;
    without it they appear only as illegal instructions)."""
    rng = random.Random(seed)
    code = []
    code += A.li(5, HANDLER) + [A.csr("csrrw", 0, 5, 0x305)]
    code += A.li(28, DATA) + A.li(31, TRAPLOG)
    for r in range(1, 28):
        value = rng.choice(CORNER_VALUES) if rng.random() < 0.4 else rng.getrandbits(32)
        code += A.li(r, value)
    code += _body(rng, n, m_extension)
    for r in range(1, 32):
        code.append(A.store("sw", r, 28, 4 * DATA_WORDS + 4 * r))
    code += A.li(29, EXIT_REG) + [A.store("sw", 0, 29, 0), A.jal(0, 0)]
    assert CODE + 4 * len(code) < HANDLER
    data = bytes(rng.getrandbits(8) for _ in range(4 * DATA_WORDS))
    segs = (
        Segment(CODE, b"".join(w.to_bytes(4, "little") for w in code)),
        Segment(HANDLER, b"".join(w.to_bytes(4, "little") for w in _handler())),
        Segment(DATA, data),
    )
    return CODE, segs
