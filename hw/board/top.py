"""Board tops: a compiled accelerator or SoC (Verilog) joined to a board's clock, UART and LEDs.

The design enters as an ``Instance`` of its Verilog module, so the top is built from the
files ``qfab compile`` wrote and not from the model. Every input of the module that the top
does not drive is tied to zero, so nothing reaches synthesis undriven.
"""

from __future__ import annotations

import re

from amaranth import (
    ClockDomain,
    ClockSignal,
    Const,
    Elaboratable,
    Instance,
    Module,
    ResetSignal,
    Signal,
)
from amaranth.lib import fifo, wiring
from qfab.hw.board.bridge import ByteBridge
from qfab.hw.board.uart import UartRx, UartTx

BAUD = 115200
CONSOLE_FIFO_DEPTH = 512


def verilog_ports(text: str, module: str) -> dict[str, tuple[str, int]]:
    """Ports of ``module`` in Verilog ``text`` (as Amaranth writes it): name -> (direction,
    width)."""
    start = re.search(rf"^module {re.escape(module)}\s*\(", text, re.M)
    if start is None:
        raise ValueError(f"no module {module!r} in the Verilog")
    end = text.find("\nendmodule", start.end())
    ports = {}
    for direction, msb, lsb, name in re.findall(
            r"^\s*(input|output)\s+(?:\[(\d+):(\d+)\]\s+)?(\w+)\s*;", text[start.end():end], re.M):
        ports[name] = (direction, int(msb) - int(lsb) + 1 if msb else 1)
    return ports


def _instance(module: str, ports: dict[str, tuple[str, int]], drive: dict, read: dict):
    """An Instance of ``module``: inputs from ``drive`` (others zero), outputs into ``read``."""
    args = {}
    for name, (direction, width) in ports.items():
        if direction == "input":
            args[f"i_{name}"] = drive.get(name, Const(0, width))
        elif name in read:
            args[f"o_{name}"] = read[name]
    return Instance(module, **args)


def _divisor(platform) -> int:
    return round(platform.default_clk_frequency / BAUD)


def _clock_and_reset(m: Module, platform) -> dict:
    """The ``sync`` domain on the board's oscillator, held in reset for its first 16 cycles
    (ECP5 platforms give a reset-less default domain; the design needs a reset). The reset
    is a flip-flop: it reaches every block of the design, over the whole part, and a gate
    before that route would lengthen every path that starts from it."""
    m.domains.por = ClockDomain(reset_less=True)
    m.domains.sync = ClockDomain()
    clk = platform.request(platform.default_clk).i
    count = Signal(4)
    held = Signal(init=1)
    with m.If(count != 15):
        m.d.por += count.eq(count + 1)
    m.d.por += held.eq(count != 15)
    m.d.comb += [ClockSignal("por").eq(clk), ClockSignal("sync").eq(clk),
                 ResetSignal("sync").eq(held)]
    return {"clk": ClockSignal(), "rst": ResetSignal()}


class _VerilogTop(Elaboratable):
    """A board top around the Verilog module ``module`` of ``verilog``, whose ports it reads.

    Parameters
    ----------
    verilog : str
        The text of ``accelerator.v`` or ``soc.v``.
    module : str
        The module instantiated.
    """

    def __init__(self, verilog: str, *, module: str) -> None:
        self.module = module
        self.ports = verilog_ports(verilog, module)


class AcceleratorOnUart(_VerilogTop):
    """The bare accelerator (``accelerator.v``) behind a UART: the host sends each input
    beat as whole bytes (little-endian) and reads each output beat back the same way, at
    115200 baud, 8N1. LED 0 is lit while any stage is active.
    """

    def elaborate(self, platform) -> Module:
        m = Module()
        in_width = self.ports["i_stream__payload"][1]
        out_width = self.ports["o_stream__payload"][1]
        m.submodules.rx = rx = UartRx(divisor=_divisor(platform))
        m.submodules.tx = tx = UartTx(divisor=_divisor(platform))
        m.submodules.bridge = bridge = ByteBridge(in_width=in_width, out_width=out_width)
        wiring.connect(m, rx.o_stream, bridge.i_bytes)
        wiring.connect(m, bridge.o_bytes, tx.i_stream)
        active = Signal(self.ports["o_stage_active"][1])
        read = {"i_stream__ready": bridge.o_beats.ready, "o_stream__valid": bridge.i_beats.valid,
                "o_stream__payload": bridge.i_beats.payload, "o_stage_active": active}
        drive = {**_clock_and_reset(m, platform), "i_stream__valid": bridge.o_beats.valid,
                 "i_stream__payload": bridge.o_beats.payload,
                 "o_stream__ready": bridge.i_beats.ready}
        m.submodules.accel = _instance(self.module, self.ports, drive, read)
        uart = platform.request("uart", 0)
        led = platform.request("led", 0)
        m.d.comb += [rx.rx.eq(uart.rx.i), uart.tx.o.eq(tx.tx), led.o.eq(active.any())]
        return m


class SocOnUart(_VerilogTop):
    """The SoC (``soc.v``) running its firmware from ROM, its console on the board's UART
    (115200 baud, 8N1) through a FIFO of 512 characters; characters printed while the FIFO
    is full are lost. LED 0 lights when the firmware exits with status 0, LED 1 with any
    other.
    """

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.tx = tx = UartTx(divisor=_divisor(platform))
        m.submodules.console = console = fifo.SyncFIFOBuffered(width=8,
                                                               depth=CONSOLE_FIFO_DEPTH)
        exit_valid, exit_code = Signal(), Signal(32)
        read = {"console_valid": console.w_en, "console_data": console.w_data,
                "exit_valid": exit_valid, "exit_code": exit_code}
        drive = {**_clock_and_reset(m, platform), "run": Const(1), "m_enable": Const(1)}
        m.submodules.soc = _instance(self.module, self.ports, drive, read)
        m.d.comb += [tx.i_stream.valid.eq(console.r_rdy), tx.i_stream.payload.eq(console.r_data),
                     console.r_en.eq(tx.i_stream.ready)]
        passed, failed = Signal(), Signal()
        with m.If(exit_valid):
            m.d.sync += [passed.eq(exit_code == 0), failed.eq(exit_code != 0)]
        uart = platform.request("uart", 0)
        m.d.comb += [uart.tx.o.eq(tx.tx), platform.request("led", 0).o.eq(passed),
                     platform.request("led", 1).o.eq(failed)]
        return m
