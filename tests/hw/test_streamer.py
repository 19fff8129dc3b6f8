"""The accelerator streamer in Amaranth simulation: a job moves beats from RAM to its output
stream and beats from its input stream to RAM, in whole words, under random idle and
back-pressure; counters, latency and range errors are read through its registers."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth import Module, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.sim import Simulator
from qfab.hw.soc.memory import BusMemory
from qfab.hw.soc.memory_map import ACCEL_REGISTERS, Region
from qfab.hw.soc.streamer import Streamer, words_per_beat
from qfab.sim.run_soc import beats_to_words, words_to_beats
from streams import stream_collect, stream_drive

RAM = Region("ram", 0x8000_0000, 0x400, "ram", "")
REG = {r.name: r.offset for r in ACCEL_REGISTERS}


async def transfer(ctx, bus, addr, *, we=0, data=0):
    ctx.set(bus.valid, 1)
    ctx.set(bus.addr, addr)
    ctx.set(bus.we, we)
    ctx.set(bus.wdata, data)
    ctx.set(bus.sel, 0b1111)
    while not ctx.get(bus.ready):
        await ctx.tick()
    rdata = ctx.get(bus.rdata)
    await ctx.tick()
    ctx.set(bus.valid, 0)
    return rdata


def _bench(in_layout, out_layout, in_beats, out_beats, *, in_addr, out_addr, seed,
           n_beats=None):
    """Run one job; returns the registers, the beats seen on o_stream and RAM words."""
    m = Module()
    m.submodules.ram = ram = BusMemory(size=RAM.size, dma=True)
    m.submodules.dut = dut = Streamer(in_payload=in_layout, out_payload=out_layout,
                                      n_stages=2, ram=RAM)
    wiring.connect(m, dut.ram, ram.dma)
    rng = np.random.default_rng(seed)
    seen = {}
    regs = {}
    in_words = beats_to_words(in_beats, in_layout.elem_shape.width, in_layout.elem_shape.signed)
    n_in = len(in_beats) if n_beats is None else n_beats[0]
    n_out = len(out_beats) if n_beats is None else n_beats[1]

    async def cpu(ctx):
        for k, w in enumerate(in_words):
            await transfer(ctx, ram.bus, in_addr + 4 * k, we=1, data=int(w))
        for name, value in (("IN_ADDR", in_addr), ("IN_BEATS", n_in),
                            ("OUT_ADDR", out_addr), ("OUT_BEATS", n_out), ("CTRL", 1)):
            await transfer(ctx, dut.bus, REG[name], we=1, data=value)
        while not (await transfer(ctx, dut.bus, REG["STATUS"])) & 0b10:
            pass
        for name in ("STATUS", "ERROR", "CYCLES", "LATENCY", "INFO", "IN_BEATS"):
            regs[name] = await transfer(ctx, dut.bus, REG[name])
        regs["STAGES"] = [await transfer(ctx, dut.bus, REG["STAGE_CYCLES"] + 4 * i)
                          for i in range(2)]
        words = words_per_beat(out_layout.size) * len(out_beats)
        regs["RAM"] = [await transfer(ctx, ram.bus, out_addr + 4 * k) for k in range(words)]

    async def accel_in(ctx):
        ctx.set(dut.stage_active, 0b01)
        log = await stream_collect(ctx, dut.o_stream, n_in, rng=rng, p_stall=0.4)
        seen["in"] = log.beats

    async def accel_out(ctx):
        await stream_drive(ctx, dut.i_stream, out_beats.tolist(), rng=rng, p_idle=0.4)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(cpu)
    if n_beats is None:
        sim.add_testbench(accel_in, background=True)
        sim.add_testbench(accel_out, background=True)
    sim.run()
    return regs, seen.get("in"), in_words


@pytest.mark.parametrize(("in_shape", "in_n", "out_shape", "out_n"), [
    (signed(12), 3, signed(7), 4),      # 36-bit input beats in two words, 28-bit outputs
    (unsigned(8), 4, signed(20), 3),    # one-word inputs, 60-bit outputs in two words
    (unsigned(1), 1, unsigned(32), 1),  # the narrowest and a full word
])
def test_job_moves_every_beat_in_order(in_shape, in_n, out_shape, out_n):
    rng = np.random.default_rng(in_n * 7 + out_n)
    in_layout = data.ArrayLayout(in_shape, in_n)
    out_layout = data.ArrayLayout(out_shape, out_n)

    def draw(shape, n, beats):
        lo, hi = (-(1 << (shape.width - 1)), 1 << (shape.width - 1)) if shape.signed \
            else (0, 1 << shape.width)
        return rng.integers(lo, hi, (beats, n))

    in_beats, out_beats = draw(in_shape, in_n, 9), draw(out_shape, out_n, 6)
    regs, seen, in_words = _bench(in_layout, out_layout, in_beats, out_beats,
                                  in_addr=0x8000_0010, out_addr=0x8000_0200, seed=in_n)
    assert len(in_words) == 9 * words_per_beat(in_layout.size)
    assert seen == in_beats.tolist()
    got = words_to_beats(np.array(regs["RAM"]), out_n, out_shape.width, out_shape.signed)
    np.testing.assert_array_equal(got, out_beats)
    assert regs["STATUS"] == 0b010 and regs["ERROR"] == 0
    assert regs["INFO"] == (words_per_beat(in_layout.size)
                            | words_per_beat(out_layout.size) << 8 | 2 << 16)
    # stage 0 was active throughout the job, stage 1 never
    assert regs["STAGES"] == [regs["CYCLES"], 0]
    assert 0 < regs["LATENCY"] < regs["CYCLES"]


@pytest.mark.parametrize(("in_addr", "out_addr", "error"), [
    (0x8000_0002, 0x8000_0200, 0b01),   # unaligned input
    (0x7FFF_FFF0, 0x8000_0200, 0b01),   # input below RAM
    (0x8000_03F0, 0x8000_0200, 0b01),   # input runs past the end of RAM
    (0x8000_0000, 0x8000_03FC, 0b10),   # output runs past the end of RAM
])
def test_job_outside_ram_is_refused(in_addr, out_addr, error):
    layout = data.ArrayLayout(unsigned(8), 4)
    regs, _, _ = _bench(layout, layout, np.zeros((0, 4), int), np.zeros((2, 4), int),
                        in_addr=in_addr, out_addr=out_addr, seed=0, n_beats=(8, 2))
    assert regs["STATUS"] == 0b110 and regs["ERROR"] == error and regs["CYCLES"] == 0


@pytest.mark.parametrize("layout", [data.ArrayLayout(unsigned(8), 4),      # one word a beat
                                    data.ArrayLayout(signed(20), 3)])     # two words a beat
def test_a_beat_of_w_words_every_w_cycles(layout):
    """Unstalled, inputs leave one beat every W cycles; outputs are taken one every W."""
    words = words_per_beat(layout.size)
    m = Module()
    m.submodules.ram = ram = BusMemory(size=RAM.size, dma=True)
    m.submodules.dut = dut = Streamer(in_payload=layout, out_payload=layout, n_stages=1, ram=RAM)
    wiring.connect(m, dut.ram, ram.dma)
    logs = {}

    async def cpu(ctx):
        for job in ((10, 0), (0, 10)):
            for name, value in (("IN_ADDR", RAM.base), ("IN_BEATS", job[0]),
                                ("OUT_ADDR", RAM.base + 0x200), ("OUT_BEATS", job[1]),
                                ("CTRL", 1)):
                await transfer(ctx, dut.bus, REG[name], we=1, data=value)
            while not (await transfer(ctx, dut.bus, REG["STATUS"])) & 0b10:
                pass

    async def accel(ctx):
        logs["in"] = await stream_collect(ctx, dut.o_stream, 10)
        logs["out"] = await stream_drive(ctx, dut.i_stream, [[1] * layout.length] * 10)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(cpu)
    sim.add_testbench(accel, background=True)
    sim.run()
    assert np.diff(logs["in"].cycles).tolist() == [words] * 9
    assert np.diff(logs["out"].cycles).tolist() == [words] * 9
