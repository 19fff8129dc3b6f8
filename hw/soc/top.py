"""The SoC top: RV32I core, bus decoder, ROM, RAM and system-control registers.

Everything is placed by :data:`~qfab.hw.soc.memory_map.MEMORY_MAP`. A second bus initiator,
``dbg``, owns the bus while ``run`` is low and the core is held in reset: the simulation
harness loads a program and reads results through it, so the Verilog does not change from
one program to the next. A board top ties ``run`` high and ``boot_addr`` to the ROM base.
"""

from amaranth import Module, ResetInserter
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from qfab.hw.rv32i.core import Rv32iCore
from qfab.hw.soc.bus import Arbiter, BusSignature, Decoder, RequestRegister
from qfab.hw.soc.memory import BusMemory, RamPortSignature, word_index_bits
from qfab.hw.soc.memory_map import MEMORY_MAP, Region, check_map
from qfab.hw.soc.sysctl import SysCtl


class Soc(wiring.Component):
    """Core, memories and peripherals of the memory map on one bus.

    Parameters
    ----------
    memory_map : tuple of Region
        Defaults to :data:`~qfab.hw.soc.memory_map.MEMORY_MAP`.
    rom_init : sequence of int
        Words preloaded into the ROM (a board's firmware); empty for ``qfab run-elf``, which
        loads through ``dbg``.
    m_extension : bool
        Build the core with the M extension, switched on by the ``m_enable`` input.
    devices : dict of str to Component
        Bus targets for further ``"io"`` regions of the map (an accelerator's register
        block, a DMA), keyed by region name; each has a ``bus: In(BusSignature())`` member
        and is added as a submodule under that name. Its other ports are the caller's to
        connect (the instance stays reachable through this dict). An io region with no
        device is left off the bus: accesses to it fault.
    dma : str or None
        The device whose ``ram`` port (``Out(RamPortSignature)``) is joined to a second port
        of the RAM, so it moves words without the bus.
    external : tuple of str
        Further ``"io"`` regions whose device sits outside the SoC: the SoC gets a member
        ``<name>_bus: Out(BusSignature())`` for it (after the region's request register),
        and ``<name>_ram: In(RamPortSignature)`` when it is ``dma``. So the SoC converts to
        Verilog once for any accelerator, which is joined to it outside.
    core : bool
        Build the RV32I core. Without it (a host drives the SoC through ``dbg``, say over
        AXI4-Lite) there is no ROM, no ``run``, ``boot_addr`` or ``m_enable``, and ``dbg``
        owns the bus always.

    Members
    -------
    dbg : In(BusSignature)
        Loader / inspector; has the bus while ``run`` is low.
    run : In(1)
        Releases the core from reset.
    boot_addr : In(32)
        First instruction fetched after ``run`` rises.
    console_valid, console_data, exit_valid, exit_code : Out
        From the ``sysctl`` registers.
    store_valid, store_addr, store_data : Out(1), Out(32), Out(32)
        A store completed on the bus this cycle (lets a harness watch ``tohost``).
    m_enable : In(1)
        Present with ``m_extension``; a board ties it high.
    """

    def __init__(self, *, memory_map: tuple[Region, ...] = MEMORY_MAP,
                 rom_init: tuple[int, ...] = (),
                 m_extension: bool = False,
                 devices: dict[str, wiring.Component] | None = None,
                 dma: str | None = None, core: bool = True,
                 external: tuple[str, ...] = ()) -> None:
        check_map(memory_map)
        self._core = core
        self._m_extension = m_extension
        self._devices = dict(devices or {})
        self._external = tuple(external)
        if dma is not None and dma not in self._devices and dma not in self._external:
            raise ValueError(f"Soc dma device {dma!r} is not one of the devices")
        self._dma = dma
        names = {r.name for r in memory_map}
        for name in [*self._devices, *self._external]:
            if name not in names or name in ("rom", "ram", "sysctl") or (
                    name in self._devices and name in self._external):
                raise ValueError(f"Soc device {name!r} has no io region of its own in the map")
        kinds = [r.kind for r in memory_map]
        if kinds.count("ram") != 1:
            raise ValueError(f"Soc needs exactly one ram region, got kinds {kinds!r}")
        self._memory_map = tuple(memory_map)
        attached = {"sysctl", *self._devices, *self._external}
        self._mapped = tuple(r for r in memory_map
                             if (r.kind != "io" or r.name in attached)
                             and (core or r.kind != "rom"))
        self._rom_init = tuple(rom_init)
        members = soc_members(memory_map, core=core, m_extension=m_extension,
                              external=self._external, dma=dma)
        super().__init__(members)

    @property
    def memory_map(self) -> tuple[Region, ...]:
        return self._memory_map

    def _device(self, m: Module, r: Region) -> wiring.Component:
        if r.kind == "rom":
            dev = BusMemory(size=r.size, read_only=True, init=self._rom_init)
            m.d.comb += dev.load_en.eq(~self.run)
        elif r.kind == "ram":
            # Lanes of one bit: a read chooses among two banks of the 128 KiB RAM, not 16.
            dev = BusMemory(size=r.size, dma=self._dma is not None, lane_bits=1)
            if self._dma in self._external:
                wiring.connect(m, wiring.flipped(getattr(self, f"{self._dma}_ram")), dev.dma)
            elif self._dma is not None:
                wiring.connect(m, self._devices[self._dma].ram, dev.dma)
        elif r.name == "sysctl":
            # Reset with the core, so CYCLE counts from the program's first cycle.
            dev = ResetInserter(~self.run)(SysCtl()) if self._core else SysCtl()
            m.d.comb += [
                self.console_valid.eq(dev.console_valid),
                self.console_data.eq(dev.console_data),
                self.exit_valid.eq(dev.exit_valid),
                self.exit_code.eq(dev.exit_code),
            ]
        else:
            dev = self._devices[r.name]
        return dev

    def elaborate(self, platform) -> wiring.Module:
        m = Module()
        m.submodules.decoder = decoder = Decoder(regions=self._mapped)
        if self._core:
            core = ResetInserter(~self.run)(Rv32iCore(m_extension=self._m_extension))
            m.submodules.core = core
            m.submodules.arbiter = arbiter = Arbiter()
            m.d.comb += [core.boot_addr.eq(self.boot_addr), arbiter.debug_owns.eq(~self.run)]
            if self._m_extension:
                m.d.comb += core.m_enable.eq(self.m_enable)
            wiring.connect(m, core.bus, arbiter.core)
            wiring.connect(m, wiring.flipped(self.dbg), arbiter.debug)
            wiring.connect(m, arbiter.bus, decoder.bus)
        else:
            wiring.connect(m, wiring.flipped(self.dbg), decoder.bus)
        for r in self._mapped:
            if r.name in self._external:
                target = wiring.flipped(getattr(self, f"{r.name}_bus"))
            else:
                dev = self._device(m, r)
                m.submodules[r.name] = dev
                target = dev.bus
            port = getattr(decoder, r.name)
            if r.kind == "io":
                # A peripheral's register writes would otherwise hang off the decoder.
                m.submodules[f"{r.name}_request"] = request = RequestRegister()
                wiring.connect(m, port, request.bus)
                port = request.target
            wiring.connect(m, port, target)
        bus = decoder.bus
        m.d.comb += [
            self.store_valid.eq(bus.valid & bus.ready & bus.we & ~bus.err),
            self.store_addr.eq(bus.addr),
            self.store_data.eq(bus.wdata),
        ]
        return m


def soc_members(memory_map: tuple[Region, ...] = MEMORY_MAP, *, core: bool = True,
                m_extension: bool = False, external: tuple[str, ...] = (),
                dma: str | None = None) -> dict[str, wiring.Member]:
    """The members of a :class:`Soc` built with these arguments (its signature's, without
    building one)."""
    members = {
        "dbg": In(BusSignature()),
        "console_valid": Out(1), "console_data": Out(8),
        "exit_valid": Out(1), "exit_code": Out(32),
        "store_valid": Out(1), "store_addr": Out(32), "store_data": Out(32),
    }
    if core:
        members.update({"run": In(1), "boot_addr": In(32)})
    if core and m_extension:
        members["m_enable"] = In(1)
    for name in external:
        members[f"{name}_bus"] = Out(BusSignature())
    if dma in external:
        ram = next(r for r in memory_map if r.kind == "ram")
        members[f"{dma}_ram"] = In(RamPortSignature(word_index_bits(ram.size)))
    return members


def soc_verilog(soc: Soc | None = None, *, name: str = "qfab_soc") -> str:
    """Verilog for ``soc`` (the default SoC when None), top module called ``name``."""
    from qfab.hw._verilog import convert
    from qfab.hw.soc.memory import compact_zero_init

    return compact_zero_init(convert(soc if soc is not None else Soc(), name=name))
