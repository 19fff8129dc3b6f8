"""The SoC bus: one signature, an address decoder and a two-initiator arbiter.

A transfer is a 32-bit word access. The initiator raises ``valid`` with ``addr`` (a byte
address; the low two bits are ignored), ``we``, ``sel`` (one bit per byte lane) and
``wdata``, and holds them until the target raises ``ready`` for one cycle. For a read,
``rdata`` is valid in that cycle. ``err`` with ``ready`` means the address is unmapped or the
access not allowed; the core turns it into an access-fault trap. A target may answer in the
cycle of ``valid`` or any later one, so slow devices (a DMA, the accelerator's register
block) can join without changing the core; it raises ``ready`` only to answer a ``valid`` of
its own (the decoder picks the answer by it).
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from qfab.hw.soc.memory_map import Region


class BusSignature(wiring.Signature):
    """The bus as seen from an initiator (``Out`` members are driven by the initiator)."""

    def __init__(self) -> None:
        super().__init__({
            "valid": Out(1),
            "addr": Out(32),
            "we": Out(1),
            "sel": Out(4),
            "wdata": Out(32),
            "ready": In(1),
            "err": In(1),
            "rdata": In(32),
        })


class Decoder(wiring.Component):
    """Routes one initiator to the target whose region holds the address.

    Parameters
    ----------
    regions : sequence of Region
        One target port is made per region, named after it.

    Members
    -------
    bus : In(BusSignature)
        From the initiator.
    <region name> : Out(BusSignature)
        To each target; its ``addr`` is the full byte address.
    """

    def __init__(self, *, regions: tuple[Region, ...]) -> None:
        if not regions:
            raise ValueError(f"Decoder needs at least one region, got {regions!r}")
        self._regions = tuple(regions)
        members = {"bus": In(BusSignature())}
        members.update({r.name: Out(BusSignature()) for r in self._regions})
        super().__init__(members)

    @property
    def regions(self) -> tuple[Region, ...]:
        return self._regions

    def elaborate(self, platform) -> wiring.Module:
        m = Module()
        hit_any = Signal()
        hits = []
        for r in self._regions:
            port = getattr(self, r.name)
            # Regions are size-aligned powers of two, so a hit compares only the high bits.
            low = r.size.bit_length() - 1
            hit = Signal(name=f"hit_{r.name}")
            m.d.comb += [
                hit.eq(self.bus.addr[low:] == (r.base >> low)),
                port.valid.eq(self.bus.valid & hit),
                port.addr.eq(self.bus.addr),
                port.we.eq(self.bus.we),
                port.sel.eq(self.bus.sel),
                port.wdata.eq(self.bus.wdata),
            ]
            hits.append((hit, port))
        # Only the target addressed raises ready (one transfer at a time), so its answer is
        # picked by its own ready rather than decoded again from the address: the address
        # decoder is on no path from a target's read data to the initiator.
        rdata, ready, err = 0, 0, 0
        for _, port in hits:
            rdata = rdata | Mux(port.ready, port.rdata, 0)
            ready = ready | port.ready
            err = err | (port.ready & port.err)
        m.d.comb += hit_any.eq(sum(h for h, _ in hits) != 0)
        # An unmapped address answers at once with an error rather than hanging the core.
        refused = self.bus.valid & ~hit_any
        m.d.comb += [
            self.bus.rdata.eq(rdata),
            self.bus.ready.eq(ready | refused),
            self.bus.err.eq(err | refused),
        ]
        return m


class Arbiter(wiring.Component):
    """Gives the bus to ``debug`` while ``debug_owns`` is high, else to ``core``.

    The debug initiator loads programs and reads results while the core is held in reset,
    so a fixed selection (rather than a fair arbiter) is enough.

    Members
    -------
    core, debug : In(BusSignature)
        The two initiators.
    debug_owns : In(1)
        Selects ``debug``.
    bus : Out(BusSignature)
        To the decoder.
    """

    core: In(BusSignature())
    debug: In(BusSignature())
    debug_owns: In(1)
    bus: Out(BusSignature())

    def elaborate(self, platform) -> wiring.Module:
        m = Module()
        for name in ("valid", "addr", "we", "sel", "wdata"):
            m.d.comb += getattr(self.bus, name).eq(
                Mux(self.debug_owns, getattr(self.debug, name), getattr(self.core, name)))
        for port, owns in ((self.debug, self.debug_owns), (self.core, ~self.debug_owns)):
            m.d.comb += [
                port.ready.eq(self.bus.ready & owns),
                port.err.eq(self.bus.err),
                port.rdata.eq(self.bus.rdata),
            ]
        return m


# Cycles from ``valid`` to ``ready`` of a peripheral behind a RequestRegister: the register,
# then the peripheral's own cycle of ``valid`` and the one it answers in.
IO_CYCLES = 3


class RequestRegister(wiring.Component):
    """Registers an initiator's request before a target sees it, so the target's decoding
    and register writes start from flip-flops, not from the initiator through the decoder.
    An access takes one cycle more than the target alone.

    Members
    -------
    bus : In(BusSignature)
        From the decoder.
    target : Out(BusSignature)
        To the target; ``ready``, ``err`` and ``rdata`` come back unregistered.
    """

    bus: In(BusSignature())
    target: Out(BusSignature())

    def elaborate(self, platform) -> wiring.Module:
        m = Module()
        t = self.target
        # The initiator holds valid through the cycle of ready, so a new request can only
        # start once the target has answered.
        with m.If(self.bus.valid & ~t.valid):
            m.d.sync += [t.valid.eq(1), t.addr.eq(self.bus.addr), t.we.eq(self.bus.we),
                         t.sel.eq(self.bus.sel), t.wdata.eq(self.bus.wdata)]
        with m.Elif(t.ready):
            m.d.sync += t.valid.eq(0)
        m.d.comb += [self.bus.ready.eq(t.ready), self.bus.err.eq(t.err),
                     self.bus.rdata.eq(t.rdata)]
        return m
