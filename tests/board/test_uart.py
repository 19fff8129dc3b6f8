# amaranth: UnusedElaboratable=no
"""The board UART and byte bridge in Amaranth's simulator, against line waveforms built here."""

from functools import partial

import numpy as np
import pytest
from amaranth import Module
from amaranth.sim import Simulator
from qfab.hw.board.bridge import ByteBridge, bytes_per_beat
from qfab.hw.board.uart import UartRx, UartTx


async def send(ctx, port, data, *, idle_cycles: int = 0) -> None:
    """Hand ``data`` to a byte stream, one byte at a time, waiting after each."""
    for byte in data:
        ctx.set(port.payload, byte)
        ctx.set(port.valid, 1)
        await ctx.tick().until(port.ready)
        ctx.set(port.valid, 0)
        for _ in range(idle_cycles):
            await ctx.tick()


def frame(byte: int, divisor: int) -> list[int]:
    """The 8N1 line levels of one byte, a sample a clock."""
    bits = [0] + [(byte >> i) & 1 for i in range(8)] + [1]
    return [b for b in bits for _ in range(divisor)]


@pytest.mark.parametrize("divisor", [4, 7])
def test_tx_waveform_is_8n1(divisor):
    data = [0x00, 0xFF, 0xA5, 0x3C, 0x81]
    dut = UartTx(divisor=divisor)
    line = []

    async def watch(ctx):
        while True:
            await ctx.tick()
            line.append(ctx.get(dut.tx))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(partial(send, port=dut.i_stream, data=data, idle_cycles=3))
    sim.add_testbench(watch, background=True)
    sim.run_until(1e-6 * len(data) * (10 * divisor + 8))
    decoded = []
    i = 0
    while i < len(line):
        if line[i] == 0:      # a start bit: sample mid-bit from here
            bits = [line[i + divisor // 2 + k * divisor] for k in range(10)]
            assert bits[0] == 0 and bits[9] == 1
            assert line[i:i + 10 * divisor] == frame(sum(b << k for k, b in
                                                        enumerate(bits[1:9])), divisor)
            decoded.append(sum(b << k for k, b in enumerate(bits[1:9])))
            i += 10 * divisor
        else:
            i += 1
    assert decoded == data


def test_rx_reads_frames_and_drops_a_bad_stop_bit():
    divisor = 6
    rng = np.random.default_rng(3)
    data = [int(b) for b in rng.integers(0, 256, size=12)]
    line = [1] * 10
    for k, byte in enumerate(data):
        wave = frame(byte, divisor)
        if k == 5:                       # framing error: stop bit low
            wave[-divisor:] = [0] * divisor
        line += wave + [1] * int(rng.integers(1 if k == 5 else 0, 8))
    line += [1] * 3 * divisor
    dut = UartRx(divisor=divisor)
    got = []

    async def bench(ctx):
        ctx.set(dut.o_stream.ready, 1)
        for level in line:
            ctx.set(dut.rx, level)
            await ctx.tick()
            if ctx.get(dut.o_stream.valid):
                got.append(ctx.get(dut.o_stream.payload))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got == data[:5] + data[6:]


def test_tx_into_rx_round_trip():
    m = Module()
    m.submodules.tx = tx = UartTx(divisor=5)
    m.submodules.rx = rx = UartRx(divisor=5)
    m.d.comb += rx.rx.eq(tx.tx)
    data = list(range(0, 256, 17))
    got = []

    async def receive(ctx):
        ctx.set(rx.o_stream.ready, 1)
        while len(got) < len(data):
            await ctx.tick()
            if ctx.get(rx.o_stream.valid):
                got.append(ctx.get(rx.o_stream.payload))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(partial(send, port=tx.i_stream, data=data))
    sim.add_testbench(receive)
    sim.run_until(1e-6 * 60 * len(data))
    assert got == data


@pytest.mark.parametrize(("in_width", "out_width"), [(8, 8), (12, 3), (17, 40)])
def test_bridge_packs_and_unpacks_little_endian(in_width, out_width):
    rng = np.random.default_rng(in_width)
    beats_in = [int(v) for v in rng.integers(0, 2 ** in_width, size=6)]
    beats_out = [int(v) for v in rng.integers(0, 2 ** out_width, size=6)]
    n_in, n_out = bytes_per_beat(in_width), bytes_per_beat(out_width)
    bytes_in = [(b >> (8 * k)) & 0xFF for b in beats_in for k in range(n_in)]
    dut = ByteBridge(in_width=in_width, out_width=out_width)
    got_beats, got_bytes = [], []

    async def push(ctx, port, values):
        for v in values:
            while rng.random() < 0.4:
                await ctx.tick()
            ctx.set(port.payload, v)
            ctx.set(port.valid, 1)
            await ctx.tick().until(port.ready)
            ctx.set(port.valid, 0)

    async def pull(ctx, port, sink, count):
        while len(sink) < count:
            ready = int(rng.random() < 0.6)
            ctx.set(port.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
            if valid and ready:
                sink.append(int(payload))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for bench in (partial(push, port=dut.i_bytes, values=bytes_in),
                  partial(push, port=dut.i_beats, values=beats_out),
                  partial(pull, port=dut.o_beats, sink=got_beats, count=len(beats_in)),
                  partial(pull, port=dut.o_bytes, sink=got_bytes, count=len(beats_out) * n_out)):
        sim.add_testbench(bench)
    sim.run()
    assert got_beats == beats_in
    assert got_bytes == [(b >> (8 * k)) & 0xFF for b in beats_out for k in range(n_out)]
