"""cocotb side of tests/board/test_axilite.py: cocotbext-axi's AXI4-Lite master drives
qfab_axilite as a host would (FINN's PYNQ driver does the same with its accelerator).

The case file ($QFAB_AXILITE_CASE) gives the register offsets, each job's input words and
expected output words. For every job the host writes the inputs into RAM, programs the
streamer, writes CTRL, polls STATUS and reads back the outputs and the cycle counters; the
outputs must equal the reference word for word. The jobs run under random pauses on all five
AXI channels, then once more after a reset in the middle of a job; an unmapped address must
answer SLVERR.
"""

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotb_helpers import pauses, reset
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp


async def _write_words(host: AxiLiteMaster, addr: int, words: list[int]) -> None:
    for k, w in enumerate(words):
        await host.write_dword(addr + 4 * k, w)


async def _read_words(host: AxiLiteMaster, addr: int, n: int) -> list[int]:
    return [await host.read_dword(addr + 4 * k) for k in range(n)]


async def _start(host: AxiLiteMaster, case: dict, job: dict) -> None:
    regs = case["registers"]
    await _write_words(host, case["in_addr"], job["inputs"])
    for name, value in (("IN_ADDR", case["in_addr"]), ("IN_BEATS", job["in_beats"]),
                        ("OUT_ADDR", case["out_addr"]), ("OUT_BEATS", job["out_beats"])):
        await host.write_dword(regs[name], value)
    await host.write_dword(regs["CTRL"], 1)


async def _run_job(host: AxiLiteMaster, case: dict, job: dict) -> dict:
    regs = case["registers"]
    await _start(host, case, job)
    polls = 0
    while not (await host.read_dword(regs["STATUS"])) & 0b10:
        polls += 1
        assert polls < 100_000, "the job never finished"
    status = await host.read_dword(regs["STATUS"])
    assert status == 0b10, f"STATUS {status:#x}: busy or error after done"
    outputs = await _read_words(host, case["out_addr"], len(job["expected"]))
    counters = {name: await host.read_dword(regs[name]) for name in ("CYCLES", "LATENCY")}
    counters["STAGES"] = await _read_words(host, regs["STAGE_CYCLES"], case["n_stages"])
    return {"outputs": outputs, **counters}


def _check(case: dict, job: dict, got: dict, where: str) -> None:
    assert got["outputs"] == job["expected"], (where, got["outputs"], job["expected"])
    assert 0 < got["LATENCY"] < got["CYCLES"], (where, got)
    # Every stage worked on every inference, and none outlasted the job.
    for stage, predicted in zip(got["STAGES"], case["predicted_stage_cycles"], strict=True):
        assert job["images"] * predicted <= stage <= got["CYCLES"], (where, got)


@cocotb.test()
async def axilite_jobs_under_stalls_and_reset(dut):
    case = json.loads(open(os.environ["QFAB_AXILITE_CASE"]).read())
    rng = random.Random(case["seed"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    host = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
    channels = (host.write_if.aw_channel, host.write_if.w_channel, host.write_if.b_channel,
                host.read_if.ar_channel, host.read_if.r_channel)
    await reset(dut)

    info = await host.read_dword(case["registers"]["INFO"])
    assert info == case["info"], (info, case["info"])
    for p in case["pauses"]:
        for channel in channels:
            channel.set_pause_generator(pauses(rng, p))
        for k, job in enumerate(case["jobs"]):
            _check(case, job, await _run_job(host, case, job), f"pause {p}, job {k}")

    # An unmapped address and a store to a read-only register answer as the bus does.
    unmapped = await host.read(case["unmapped"], 4)
    assert unmapped.resp == AxiResp.SLVERR, unmapped
    written = await host.write(case["unmapped"], b"\0\0\0\0")
    assert written.resp == AxiResp.SLVERR, written

    # Reset in the middle of a job, then every job again from a clean start.
    await _start(host, case, case["jobs"][0])
    await ClockCycles(dut.clk, 20)
    await reset(dut)
    assert await host.read_dword(case["registers"]["STATUS"]) == 0
    for k, job in enumerate(case["jobs"]):
        _check(case, job, await _run_job(host, case, job), f"after reset, job {k}")
