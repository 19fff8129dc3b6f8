"""The SoC bus in Amaranth simulation: decoding, byte lanes, ROM write protection, errors
for unmapped addresses, and an extra device added to the map."""

from __future__ import annotations

import gc
import warnings

import pytest
from amaranth import Module
from amaranth.back import rtlil
from amaranth.hdl import UnusedElaboratable
from amaranth.lib import wiring
from amaranth.sim import Simulator
from qfab.hw.soc.bus import Decoder
from qfab.hw.soc.memory import BUS_CYCLES, BusMemory
from qfab.hw.soc.memory_map import MEMORY_MAP, Region
from qfab.hw.soc.top import Soc

REGIONS = (Region("rom", 0x0000_0000, 0x100, "rom", ""),
           Region("ram", 0x1000_0000, 0x100, "ram", ""))


async def transfer(ctx, bus, addr, *, we=0, data=0, sel=0b1111):
    """One bus transfer; returns (rdata, err, cycles until ready)."""
    ctx.set(bus.valid, 1)
    ctx.set(bus.addr, addr)
    ctx.set(bus.we, we)
    ctx.set(bus.wdata, data)
    ctx.set(bus.sel, sel)
    cycles = 0
    while not ctx.get(bus.ready):
        await ctx.tick()
        cycles += 1
    rdata, err = ctx.get(bus.rdata), ctx.get(bus.err)
    await ctx.tick()
    ctx.set(bus.valid, 0)
    return rdata, err, cycles


def test_decoder_memories_and_errors():
    m = Module()
    m.submodules.dec = dec = Decoder(regions=REGIONS)
    m.submodules.rom = rom = BusMemory(size=0x100, read_only=True, init=(0x11223344,))
    m.submodules.ram = ram = BusMemory(size=0x100)
    wiring.connect(m, dec.rom, rom.bus)
    wiring.connect(m, dec.ram, ram.bus)
    results = {}

    async def bench(ctx):
        bus = dec.bus
        results["rom"] = await transfer(ctx, bus, 0x0)
        results["rom_store"] = await transfer(ctx, bus, 0x0, we=1, data=5)
        results["rom_after"] = await transfer(ctx, bus, 0x0)
        ctx.set(rom.load_en, 1)
        await transfer(ctx, bus, 0x4, we=1, data=0xCAFEF00D)
        ctx.set(rom.load_en, 0)
        results["rom_loaded"] = await transfer(ctx, bus, 0x4)
        await transfer(ctx, bus, 0x1000_0010, we=1, data=0xAABBCCDD)
        await transfer(ctx, bus, 0x1000_0010, we=1, data=0x00EE0000, sel=0b0100)
        results["ram"] = await transfer(ctx, bus, 0x1000_0010)
        results["unmapped"] = await transfer(ctx, bus, 0x2000_0000, we=1, data=1)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # Ready in the memories' last cycle of BUS_CYCLES.
    assert results["rom"] == (0x11223344, 0, BUS_CYCLES - 1)
    assert results["rom_store"][1] == 1 and results["rom_after"][0] == 0x11223344
    assert results["rom_loaded"] == (0xCAFEF00D, 0, BUS_CYCLES - 1)
    assert results["ram"] == (0xAAEECCDD, 0, BUS_CYCLES - 1)
    assert results["unmapped"][1:] == (1, 0)  # refused in the same cycle


def test_soc_takes_extra_devices_and_rejects_bad_ones():
    extra = Region("scratch", 0x5000_0000, 0x1000, "io", "an added device")
    dev = BusMemory(size=0x1000)
    soc = Soc(memory_map=(*MEMORY_MAP, extra), devices={"scratch": dev})
    assert "hit_scratch" in rtlil.convert(soc)
    # An io region with no device (like "accel" on a SoC without an accelerator) is left off
    # the bus, so accesses to it fault.
    bare = rtlil.convert(Soc(memory_map=(*MEMORY_MAP, extra)))
    assert "hit_scratch" not in bare and "hit_accel" not in bare and "hit_sysctl" in bare
    with warnings.catch_warnings():
        # The rejected designs are, rightly, never elaborated.
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(ValueError, match="'nowhere'"):
            Soc(devices={"nowhere": dev})
        with pytest.raises(ValueError, match="dma device 'scratch' is not one of the devices"):
            Soc(memory_map=(*MEMORY_MAP, extra), dma="scratch")
        with pytest.raises(ValueError, match="got 6"):
            BusMemory(size=6)
        gc.collect()
