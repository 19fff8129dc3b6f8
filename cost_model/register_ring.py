"""A register ring around a block under test, so that place and route times it as it is used.

Placed and routed with its ports on the part's pins, a bare block is pulled apart: nextpnr
puts each port on some pin around the die and drags the registers beside those ports after
it, so its paths carry routes no design has (a block in a design talks to its neighbours'
registers, next to it). :class:`RegisterRing` wraps a block so every path it has is internal:

- each input port is driven by a register of one shift chain that starts at the pin ``din``;
- each output port is caught in a register, and the caught values fold into a second shift
  chain (each link XORs one caught bit into the chain) that ends at the pin ``dout``.

The top so has three pins (``din``, ``dout``, and the reset), Yosys can remove nothing (every
output reaches ``dout``, every input bit varies), and each path the ring adds is a register
into a register, or through one two-input XOR, far shorter than the block's own.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Elaboratable, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In

__all__ = ["RegisterRing", "ringed_verilog"]


class RegisterRing(Elaboratable):
    """``block`` with its inputs driven by registers and its outputs caught in registers.

    Parameters
    ----------
    block : wiring.Component
        The block under test; its ports are its signature's members.

    Members
    -------
    din : Signal(1)
        The input chain's first bit.
    dout : Signal(1)
        The output chain's last bit.
    """

    def __init__(self, block: wiring.Component):
        self.block = block
        self.din = Signal(name="din")
        self.dout = Signal(name="dout")

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.block = self.block
        ports = [(member.flow, Value.cast(value), "__".join(map(str, path)))
                 for path, member, value in self.block.signature.flatten(self.block)]
        chain = self.din
        for flow, value, name in ports:
            if flow != In:
                continue
            reg = Signal(len(value), name=f"ring_in__{name}")
            m.d.sync += reg.eq(Cat(chain, reg[:-1]) if len(value) > 1 else chain)
            m.d.comb += value.eq(reg)
            chain = reg[-1]
        for flow, value, name in ports:
            if flow == In:
                continue
            caught = Signal(len(value), name=f"ring_out__{name}")
            fold = Signal(len(value), name=f"ring_fold__{name}")
            m.d.sync += [caught.eq(value),
                         fold.eq((Cat(chain, fold[:-1]) if len(value) > 1 else chain) ^ caught)]
            chain = fold[-1]
        m.d.comb += self.dout.eq(chain)
        return m


def ringed_verilog(block: wiring.Component, name: str = "top") -> str:
    """Verilog of ``block`` inside a :class:`RegisterRing`, top module ``name``."""
    from amaranth.back import verilog

    ring = RegisterRing(block)
    return verilog.convert(ring, name=name, ports=[ring.din, ring.dout], emit_src=False)
