"""System control registers: console, simulation exit and a 64-bit cycle counter."""

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from qfab.hw.soc.bus import BusSignature
from qfab.hw.soc.memory_map import SYSCTL_REGISTERS

_OFFSET = {reg.name: reg.offset for reg in SYSCTL_REGISTERS}


class SysCtl(wiring.Component):
    """The ``sysctl`` region of the memory map.

    A store to ``CONSOLE`` pulses ``console_valid`` for one cycle with the low byte on
    ``console_data``; a store to ``EXIT`` pulses ``exit_valid`` with the stored word on
    ``exit_code``. The simulation harness (or, on a board, a UART and an LED) consumes them.
    ``CYCLE_LO``/``CYCLE_HI`` read a free-running counter; software reads high, low, high
    again to get a consistent pair. Accesses answer one cycle after ``valid``; other
    offsets read 0 and ignore stores.

    Members
    -------
    bus : In(BusSignature)
        The target port.
    console_valid, console_data : Out(1), Out(8)
        A character printed.
    exit_valid, exit_code : Out(1), Out(32)
        The program asked to stop.
    """

    bus: In(BusSignature())
    console_valid: Out(1)
    console_data: Out(8)
    exit_valid: Out(1)
    exit_code: Out(32)

    def elaborate(self, platform) -> wiring.Module:
        m = Module()
        cycles = Signal(64)
        m.d.sync += cycles.eq(cycles + 1)
        answered = Signal()
        start = self.bus.valid & ~answered
        m.d.sync += answered.eq(start)
        offset = self.bus.addr[:12]
        rdata = Signal(32)
        m.d.sync += [
            self.console_valid.eq(0),
            self.exit_valid.eq(0),
        ]
        with m.If(start):
            m.d.sync += rdata.eq(0)
            with m.If(self.bus.we):
                with m.If(offset == _OFFSET["CONSOLE"]):
                    m.d.sync += [self.console_valid.eq(1),
                                 self.console_data.eq(self.bus.wdata[:8])]
                with m.If(offset == _OFFSET["EXIT"]):
                    m.d.sync += [self.exit_valid.eq(1), self.exit_code.eq(self.bus.wdata)]
            with m.Else():
                with m.If(offset == _OFFSET["CYCLE_LO"]):
                    m.d.sync += rdata.eq(cycles[:32])
                with m.If(offset == _OFFSET["CYCLE_HI"]):
                    m.d.sync += rdata.eq(cycles[32:])
        m.d.comb += [self.bus.ready.eq(answered), self.bus.rdata.eq(rdata)]
        return m
