# amaranth: UnusedElaboratable=no
"""The register ring that place and route measures blocks in (qfab.cost_model.register_ring):
its top has no port but the chain's two ends, every input bit of the block varies, and every
output bit reaches ``dout``, so synthesis keeps the whole block."""

import re

import pytest
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from qfab.cost_model.register_ring import RegisterRing, ringed_verilog

DIN = [(i * 7 + i // 3) % 5 < 2 for i in range(48)]     # an irregular bit sequence


class _Block(wiring.Component):
    """A stream in and out plus a plain port each way; ``flip`` inverts one output bit."""

    i_stream: In(stream.Signature(6))
    o_stream: Out(stream.Signature(5))
    i_mode: In(2)
    o_flag: Out(1)

    def __init__(self, flip: int | None = None):
        self.flip = flip
        super().__init__()

    def elaborate(self, platform) -> Module:
        m = Module()
        payload = self.i_stream.payload[:5] ^ self.i_mode
        values = [*payload, self.i_stream.valid, self.o_stream.ready, self.i_mode[1]]
        ports = [*self.o_stream.payload, self.o_stream.valid, self.i_stream.ready,
                 self.o_flag]
        for k, (port, value) in enumerate(zip(ports, values, strict=True)):
            m.d.comb += port.eq(~value if k == self.flip else value)
        return m


def _run(block: _Block) -> tuple[list[int], list[int]]:
    """``dout`` each cycle, and the block's input bits each cycle (as one integer)."""
    ring = RegisterRing(block)
    ins = [block.i_stream.payload, block.i_stream.valid, block.o_stream.ready, block.i_mode]
    dout, seen = [], []

    async def bench(ctx):
        for bit in DIN:
            ctx.set(ring.din, bit)
            await ctx.tick()
            dout.append(ctx.get(ring.dout))
            seen.append(sum(ctx.get(v) << (8 * k) for k, v in enumerate(ins)))

    sim = Simulator(ring)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return dout, seen


def test_top_has_only_the_chain_ends_as_ports():
    text = ringed_verilog(_Block())
    header = re.search(r"module top\((.*?)\);", text, re.S).group(1)
    assert sorted(p.strip() for p in header.split(",")) == ["clk", "din", "dout", "rst"]


def test_every_input_bit_of_the_block_varies():
    _, seen = _run(_Block())
    widths = (6, 1, 1, 2)
    for k, width in enumerate(widths):
        for bit in range(width):
            values = {(s >> (8 * k + bit)) & 1 for s in seen}
            assert values == {0, 1}, (k, bit)


@pytest.mark.parametrize("flip", range(8))
def test_every_output_bit_of_the_block_reaches_dout(flip):
    base, _ = _run(_Block())
    changed, _ = _run(_Block(flip))
    assert changed != base
