"""Blocks in Amaranth simulation against their Python references: the ALU, the M-extension
unit, and the default SoC (core without M) running a small program."""

from __future__ import annotations

import random

import rv32_asm as A
from amaranth.sim import Simulator
from qfab.hw.rv32i.alu import Alu, alu_controls, alu_reference
from qfab.hw.rv32i.isa import AluOp
from qfab.hw.rv32i.muldiv import DIVIDE_CYCLES, PRODUCT_LATENCY, MulDiv, muldiv_reference
from qfab.hw.soc.memory_map import SYSCTL_REGISTERS, Region
from qfab.hw.soc.top import Soc

CORNERS = [0, 1, 2, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0xFFFF_FFFE, 31, 32, 0x1234_5678]


def _operands(n: int, seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    pairs = [(a, b) for a in CORNERS for b in CORNERS]
    return pairs + [(rng.getrandbits(32), rng.getrandbits(32)) for _ in range(n)]


def _signed(x: int) -> int:
    return x - (1 << 32) if x >> 31 else x


def test_alu_matches_reference():
    alu = Alu()
    cases = [(op, alt, a, b) for op in range(8) for alt in ((0, 1) if op in (0, 5) else (0,))
             for a, b in _operands(20, op)]

    async def bench(ctx):
        for op, alt, a, b in cases:
            sub, unsigned = alu_controls(op, bool(alt))
            for port, value in ((alu.op, op), (alu.alt, alt), (alu.sub, sub),
                                (alu.unsigned, unsigned), (alu.a, a), (alu.b, b)):
                ctx.set(port, value)
            # SLT and SLTU answer on `less` (bit 0 of rd); their `result` is 0.
            less = ctx.get(alu.less) if op in (AluOp.SLT, AluOp.SLTU) else 0
            assert ctx.get(alu.result) | less == alu_reference(op, bool(alt), a, b), \
                (op, alt, a, b)


def test_alu_compares_a_branch_signed_and_unsigned():
    alu = Alu()
    cases = [(unsigned, a, b) for unsigned in (0, 1) for a, b in _operands(40, unsigned)]

    async def bench(ctx):
        ctx.set(alu.sub, 1)
        for unsigned, a, b in cases:
            ctx.set(alu.unsigned, unsigned)
            ctx.set(alu.a, a)
            ctx.set(alu.b, b)
            less = a < b if unsigned else _signed(a) < _signed(b)
            assert (ctx.get(alu.less), ctx.get(alu.equal)) == (less, a == b), (unsigned, a, b)

    sim = Simulator(alu)
    sim.add_testbench(bench)
    sim.run()


def test_muldiv_matches_reference():
    dut = MulDiv()
    cases = [(op, a, b) for op in range(8) for a, b in _operands(6, op)]

    async def bench(ctx):
        for op, a, b in cases:
            ctx.set(dut.op, op)
            ctx.set(dut.a, a)
            ctx.set(dut.b, b)
            if op < 4:
                for _ in range(PRODUCT_LATENCY):
                    await ctx.tick()
                assert ctx.get(dut.product) == muldiv_reference(op, a, b), (op, a, b)
                continue
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            cycles = 1
            while not ctx.get(dut.done):
                await ctx.tick()
                cycles += 1
            assert cycles == DIVIDE_CYCLES
            assert ctx.get(dut.quotient_or_remainder) == muldiv_reference(op, a, b), (op, a, b)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_default_soc_runs_a_program_and_traps_m_instructions():
    ram = Region("ram", 0x8000_0000, 0x400, "ram", "")
    sysctl = Region("sysctl", 0x4000_0000, 0x1000, "io", "", SYSCTL_REGISTERS)
    soc = Soc(memory_map=(Region("rom", 0, 0x100, "rom", ""), sysctl, ram))
    handler = 0x8000_0200
    code = A.li(5, handler) + [A.csr("csrrw", 0, 5, 0x305)]
    code += A.li(6, 0x4000_0000) + [A.i_type("addi", 7, 0, ord("K")), A.store("sb", 7, 6, 0)]
    code += A.li(8, 6) + A.li(9, 7) + [A.r_type("mul", 10, 8, 9), A.jal(0, 0)]
    # The handler exits with mcause * 16 + 7 to show it ran after `mul` trapped.
    trap = [A.csr("csrrs", 11, 0, 0x342), A.i_type("slli", 11, 11, 4),
            A.i_type("addi", 11, 11, 7), A.store("sw", 11, 6, 4), A.jal(0, 0)]
    image = {0x8000_0000 + 4 * i: w for i, w in enumerate(code)}
    image.update({handler + 4 * i: w for i, w in enumerate(trap)})
    seen = {"console": [], "exit": None}

    async def bench(ctx):
        ctx.set(soc.boot_addr, 0x8000_0000)
        for addr, word in image.items():
            ctx.set(soc.dbg.valid, 1)
            ctx.set(soc.dbg.addr, addr)
            ctx.set(soc.dbg.we, 1)
            ctx.set(soc.dbg.sel, 0b1111)
            ctx.set(soc.dbg.wdata, word)
            await ctx.tick().until(soc.dbg.ready)
            # Valid held past ready would start another access.
            ctx.set(soc.dbg.valid, 0)
            await ctx.tick()
        ctx.set(soc.run, 1)
        for _ in range(800):
            await ctx.tick()
            if ctx.get(soc.console_valid):
                seen["console"].append(chr(ctx.get(soc.console_data)))
            if ctx.get(soc.exit_valid):
                seen["exit"] = ctx.get(soc.exit_code)
                break

    sim = Simulator(soc)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == {"console": ["K"], "exit": 2 * 16 + 7}
