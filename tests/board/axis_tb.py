"""cocotb side of tests/board/test_axis.py: cocotbext-axi drives qfab_axis.

The case file ($QFAB_AXIS_CASE) gives each inference's input TDATA words, the expected
output words and a seed. Every inference is one frame (TLAST on its last beat), all are sent
back to back, with random TVALID pauses on the source and TREADY pauses on the sink; each
received frame must equal its inference's expected words, which checks the TLAST placement
as well as the data. A second pass resets the design in the middle of a frame and checks that
the inferences sent after the reset still come out exactly.
"""

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotb_helpers import pauses, reset
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource


@cocotb.test()
async def axis_stalls_back_to_back_and_reset(dut):
    case = json.loads(open(os.environ["QFAB_AXIS_CASE"]).read())
    rng = random.Random(case["seed"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    # One list element a beat: the whole TDATA word (byte_lanes=1), as the case file has it.
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst,
                             byte_lanes=1)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst,
                         byte_lanes=1)
    await reset(dut)

    for p_source, p_sink in case["pauses"]:
        source.set_pause_generator(pauses(rng, p_source))
        sink.set_pause_generator(pauses(rng, p_sink))
        for words in case["inputs"]:
            await source.send(AxiStreamFrame(words))
        for k, want in enumerate(case["expected"]):
            frame = await sink.recv()
            assert list(frame.tdata) == want, (p_source, p_sink, k, list(frame.tdata), want)
        assert sink.empty()

    # Reset mid-stream: half an inference in, then everything from a clean start.
    source.set_pause_generator(pauses(rng, 0.3))
    sink.set_pause_generator(pauses(rng, 0.3))
    half = case["inputs"][0][: max(1, len(case["inputs"][0]) // 2)]
    await source.send(AxiStreamFrame(half))
    await source.wait()
    await ClockCycles(dut.clk, 3)
    await reset(dut)
    sink.clear()
    for words in case["inputs"]:
        await source.send(AxiStreamFrame(words))
    for k, want in enumerate(case["expected"]):
        frame = await sink.recv()
        assert list(frame.tdata) == want, ("after reset", k, list(frame.tdata), want)
