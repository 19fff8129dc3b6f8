"""The SoC with an accelerator: the streamer in the ``accel`` region feeds it from RAM."""

from __future__ import annotations

from amaranth import Module, Shape
from amaranth.lib import wiring
from amaranth.lib.wiring import In
from qfab.hw.soc.memory_map import MEMORY_MAP, region
from qfab.hw.soc.streamer import Streamer
from qfab.hw.soc.top import Soc, soc_members

#: The members the platform (:func:`soc_platform`) has for the accelerator's streamer.
_STREAMER_PORTS = ("accel_bus", "accel_ram")


def soc_platform(*, rom_init: tuple[int, ...] = (), core: bool = True) -> Soc:
    """The :class:`Soc` an :class:`AcceleratorSoc` is built around: everything but the
    streamer, whose register bus (``accel_bus``) and RAM port (``accel_ram``) it leaves
    outside. It depends on no accelerator, so its Verilog is converted once for all."""
    return Soc(rom_init=rom_init, external=("accel",), dma="accel", core=core)


def soc_platform_signature(*, core: bool = True) -> wiring.Signature:
    """The signature of :func:`soc_platform`, without building it."""
    return wiring.Signature(soc_members(MEMORY_MAP, core=core, external=("accel",),
                                        dma="accel"))


class AcceleratorSoc(wiring.Component):
    """:class:`Soc`'s ports, with ``accel``: a Component with ``i_stream``, ``o_stream`` and
    ``o_stage_active`` ports (what the compiler's accelerator top has), joined to a
    :class:`Streamer` whose registers sit in the ``accel`` region and which reaches the RAM
    through its second port.

    Parameters
    ----------
    accel : Component
        The accelerator.
    rom_init : sequence of int
        The firmware image.
    core : bool
        Build the RV32I core (see :class:`Soc`); without it a host drives ``dbg``.
    soc : Component, optional
        The rest of the SoC, :func:`soc_platform` (``rom_init`` and ``core``) when None; a
        stand-in with its signature (an instance of its Verilog, converted apart) otherwise.
    """

    def __init__(self, accel: wiring.Component, *, rom_init: tuple[int, ...] = (),
                 core: bool = True, soc: wiring.Component | None = None) -> None:
        members = accel.signature.members
        for name in ("i_stream", "o_stream", "o_stage_active"):
            if name not in members:
                raise ValueError(f"AcceleratorSoc needs an accelerator with {name}")
        self._accel = accel
        self._soc = soc if soc is not None else soc_platform(rom_init=rom_init, core=core)

        def payload(name: str):
            return members[name].signature.members["payload"].shape

        self.streamer = Streamer(in_payload=payload("i_stream"), out_payload=payload("o_stream"),
                                 n_stages=Shape.cast(members["o_stage_active"].shape).width,
                                 ram=region("ram", MEMORY_MAP))
        outer = {name: member for name, member in self._soc.signature.members.items()
                 if name not in _STREAMER_PORTS}
        super().__init__(outer)

    def elaborate(self, platform) -> Module:
        m = Module()
        soc = self._soc
        m.submodules.soc = soc
        m.submodules.accel = streamer = self.streamer
        m.submodules.accelerator = accel = self._accel
        wiring.connect(m, soc.accel_bus, streamer.bus)
        wiring.connect(m, streamer.ram, soc.accel_ram)
        for name, member in self.signature.members.items():
            outer, inner = getattr(self, name), getattr(soc, name)
            if member.is_signature:
                wiring.connect(m, wiring.flipped(outer), inner)
            elif member.flow == In:
                m.d.comb += inner.eq(outer)
            else:
                m.d.comb += outer.eq(inner)
        wiring.connect(m, streamer.o_stream, accel.i_stream)
        wiring.connect(m, accel.o_stream, streamer.i_stream)
        m.d.comb += streamer.stage_active.eq(accel.o_stage_active)
        return m
