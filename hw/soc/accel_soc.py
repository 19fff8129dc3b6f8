"""The SoC with an accelerator: the streamer in the ``accel`` region feeds it from RAM."""

from __future__ import annotations

from amaranth import Module, Shape
from amaranth.lib import wiring
from qfab.hw.soc.memory_map import MEMORY_MAP, region
from qfab.hw.soc.streamer import Streamer
from qfab.hw.soc.top import Soc


class AcceleratorSoc(Soc):
    """:class:`Soc` with ``accel``: a Component with ``i_stream``, ``o_stream`` and
    ``o_stage_active`` ports (what the compiler's accelerator top has), joined to a
    :class:`Streamer` whose registers sit in the ``accel`` region and which reaches the RAM
    through its second port. The ports are those of :class:`Soc`.

    Parameters
    ----------
    accel : Component
        The accelerator.
    rom_init : sequence of int
        The firmware image.
    core : bool
        Build the RV32I core (see :class:`Soc`); without it a host drives ``dbg``.
    """

    def __init__(self, accel: wiring.Component, *, rom_init: tuple[int, ...] = (),
                 core: bool = True) -> None:
        members = accel.signature.members
        for name in ("i_stream", "o_stream", "o_stage_active"):
            if name not in members:
                raise ValueError(f"AcceleratorSoc needs an accelerator with {name}")
        self._accel = accel

        def payload(name: str):
            return members[name].signature.members["payload"].shape

        self.streamer = Streamer(in_payload=payload("i_stream"), out_payload=payload("o_stream"),
                                 n_stages=Shape.cast(members["o_stage_active"].shape).width,
                                 ram=region("ram", MEMORY_MAP))
        super().__init__(rom_init=rom_init, devices={"accel": self.streamer}, dma="accel",
                         core=core)

    def elaborate(self, platform) -> Module:
        m = super().elaborate(platform)
        m.submodules.accelerator = accel = self._accel
        wiring.connect(m, self.streamer.o_stream, accel.i_stream)
        wiring.connect(m, accel.o_stream, self.streamer.i_stream)
        m.d.comb += self.streamer.stage_active.eq(accel.o_stage_active)
        return m
