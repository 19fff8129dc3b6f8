"""Helpers the cocotb benches (axis_tb.py, axilite_tb.py) share."""

import random

from cocotb.triggers import ClockCycles, RisingEdge


def pauses(rng: random.Random, p: float):
    """A cocotbext-axi pause generator: pause each cycle with probability ``p``."""
    while True:
        yield rng.random() < p


async def reset(dut, cycles: int = 4) -> None:
    """Hold the active-high ``rst`` for ``cycles`` clocks."""
    dut.rst.value = 1
    await ClockCycles(dut.clk, cycles)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
