"""An AXI4-Lite target that drives the SoC bus, so a host processor (Zynq's ARM, a
MicroBlaze, a PCIe bridge) reaches the SoC's registers and memories without the RV32I core.

One transfer at a time: a write is taken when both its address (AW) and its data (W) are
valid, which AXI4-Lite allows a target to wait for, and answered on B once the bus has
answered; a read is taken on AR and answered on R. Writes go first when both wait. A bus
error (an unmapped address, a store to ROM) answers SLVERR; everything else OKAY.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from qfab.hw.soc.bus import BusSignature

RESP_OKAY, RESP_SLVERR = 0b00, 0b10


def axilite_members(prefix: str, addr_bits: int = 32) -> dict:
    """The AXI4-Lite target ports, flat and named ``<prefix>_awaddr`` and so on, as vendor
    tools and cocotbext-axi's ``AxiLiteBus.from_prefix`` expect them."""
    return {f"{prefix}_{name}": port for name, port in {
        "awaddr": In(addr_bits), "awprot": In(3), "awvalid": In(1), "awready": Out(1),
        "wdata": In(32), "wstrb": In(4), "wvalid": In(1), "wready": Out(1),
        "bresp": Out(2), "bvalid": Out(1), "bready": In(1),
        "araddr": In(addr_bits), "arprot": In(3), "arvalid": In(1), "arready": Out(1),
        "rdata": Out(32), "rresp": Out(2), "rvalid": Out(1), "rready": In(1),
    }.items()}


class AxiLiteBridge(wiring.Component):
    """AXI4-Lite target ports (``s_axil_*``) in, one :class:`BusSignature` initiator out.

    Members
    -------
    s_axil_* : the AXI4-Lite channels AW, W, B, AR and R (32-bit data, 32-bit addresses;
        ``*prot`` is accepted and ignored).
    bus : Out(BusSignature)
        To the SoC's decoder.
    """

    def __init__(self) -> None:
        super().__init__({**axilite_members("s_axil"), "bus": Out(BusSignature())})

    def elaborate(self, platform) -> Module:
        m = Module()
        p = {name.removeprefix("s_axil_"): getattr(self, name)
             for name in self.signature.members if name.startswith("s_axil_")}
        addr, wdata, sel, we = Signal(32), Signal(32), Signal(4), Signal()
        rdata, err = Signal(32), Signal()
        m.d.comb += [self.bus.addr.eq(addr), self.bus.wdata.eq(wdata), self.bus.sel.eq(sel),
                     self.bus.we.eq(we)]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(p["awvalid"] & p["wvalid"]):
                    m.d.comb += [p["awready"].eq(1), p["wready"].eq(1)]
                    m.d.sync += [addr.eq(p["awaddr"]), wdata.eq(p["wdata"]),
                                 sel.eq(p["wstrb"]), we.eq(1)]
                    m.next = "ACCESS"
                with m.Elif(p["arvalid"]):
                    m.d.comb += p["arready"].eq(1)
                    m.d.sync += [addr.eq(p["araddr"]), sel.eq(0b1111), we.eq(0)]
                    m.next = "ACCESS"
            with m.State("ACCESS"):
                m.d.comb += self.bus.valid.eq(1)
                with m.If(self.bus.ready):
                    m.d.sync += [rdata.eq(self.bus.rdata), err.eq(self.bus.err)]
                    m.next = "RESPOND"
            with m.State("RESPOND"):
                resp = Mux(err, RESP_SLVERR, RESP_OKAY)
                m.d.comb += [p["bresp"].eq(resp), p["rresp"].eq(resp)]
                m.d.comb += [p["bvalid"].eq(we), p["rvalid"].eq(~we), p["rdata"].eq(rdata)]
                with m.If(we & p["bready"] | ~we & p["rready"]):
                    m.next = "IDLE"
        return m


class AxiLiteAccelerator(wiring.Component):
    """An accelerator driven by a host over AXI4-Lite, without the RV32I core: the
    :class:`~qfab.hw.soc.accel_soc.AcceleratorSoc` built with ``core=False`` (RAM, the
    ``sysctl`` cycle counter and the ``accel`` streamer, at their memory-map addresses) behind
    an :class:`AxiLiteBridge`.

    A host writes an inference's input beats into RAM, programs ``IN_ADDR``, ``IN_BEATS``,
    ``OUT_ADDR`` and ``OUT_BEATS``, writes 1 to ``CTRL``, polls ``STATUS`` until ``done``,
    then reads the output beats from RAM and the ``CYCLES``, ``LATENCY`` and
    ``STAGE_CYCLES`` counters: the register map the firmware uses, at the same addresses.

    Parameters
    ----------
    accel : Component
        The accelerator (``i_stream``, ``o_stream``, ``o_stage_active``).

    Members
    -------
    s_axil_* : the AXI4-Lite target ports (see :class:`AxiLiteBridge`).
    """

    def __init__(self, accel: wiring.Component) -> None:
        from qfab.hw.soc.accel_soc import AcceleratorSoc

        self.soc = AcceleratorSoc(accel, core=False)
        super().__init__(axilite_members("s_axil"))

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.soc = soc = self.soc
        m.submodules.bridge = bridge = AxiLiteBridge()
        wiring.connect(m, bridge.bus, soc.dbg)
        for name, member in self.signature.members.items():
            outer, inner = getattr(self, name), getattr(bridge, name)
            m.d.comb += (inner.eq(outer) if member.flow == In else outer.eq(inner))
        return m
