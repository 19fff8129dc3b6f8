"""Output register with a spare slot, shared by the compute blocks.

A pipeline that stalls whenever its output register is full and not taken makes its input
``ready`` a combinational function of its output ``ready``; chained blocks then form one long
path from the last ``ready`` to the first. With one spare register the pipeline stalls only
when the spare is full, which is a register: ``ready`` paths end at every block, at the cost
of one more output word of flip-flops. Throughput and latency are unchanged.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Module, Signal

__all__ = ["OutputSkid", "OutputRegister", "HeldResultOutput"]


class OutputSkid:
    """The output register of ``o_stream`` plus a spare, and the pipeline's advance signal.

    Parameters
    ----------
    m : Module
        The module to add the logic to.
    o_stream : stream.Interface
        The block's output stream; its payload and valid become registers here.
    layout : ShapeLike
        Payload layout of ``o_stream``.

    Members
    -------
    advance : Signal
        High when the pipeline may move (the spare is empty). Registered.
    """

    def __init__(self, m: Module, o_stream: Any, layout: Any):
        self._m = m
        self._o = o_stream
        self._spare = Signal(layout)
        self._spare_valid = Signal()
        self.advance = Signal()
        m.d.comb += self.advance.eq(~self._spare_valid)

    def push(self, valid: Any, payload: Any) -> None:
        """The pipeline's last stage: ``payload`` is a result when ``valid & advance``."""
        m, o = self._m, self._o
        new = Signal()
        m.d.comb += new.eq(valid & self.advance)
        with m.If(~o.valid | o.ready):
            with m.If(self._spare_valid):
                m.d.sync += [o.payload.eq(self._spare), o.valid.eq(1), self._spare_valid.eq(0)]
            with m.Else():
                m.d.sync += o.valid.eq(new)
                with m.If(new):
                    m.d.sync += o.payload.eq(payload)
        with m.Elif(new):
            m.d.sync += [self._spare.eq(payload), self._spare_valid.eq(1)]


class BeatEveryCycle:
    """A unit taking a beat every cycle (its ``stages`` registers, then its output register):
    the latency and initiation interval the cycle and cost models read."""

    @property
    def latency(self) -> int:
        """Cycles from an input beat to its output beat without stalls."""
        return self.stages + 1

    @property
    def initiation_interval(self) -> int:
        return 1


class OutputRegister:
    """The output register of ``o_stream`` alone, with :class:`OutputSkid`'s interface.

    The pipeline moves when the register is empty or taken, so ``advance`` (the block's
    input ``ready``) follows the consumer's ``ready`` through logic: blocks built with it
    pass ``ready`` back in one path to the nearest block with a spare. Where back-pressure
    is rare (an unrolled chain at one beat a cycle) that saves the spare's flip-flops and the
    multiplexer a bit in front of the output register.
    """

    def __init__(self, m: Module, o_stream: Any):
        self._m = m
        self._o = o_stream
        self.advance = Signal()
        m.d.comb += self.advance.eq(~o_stream.valid | o_stream.ready)

    def push(self, valid: Any, payload: Any) -> None:
        """The pipeline's last stage: ``payload`` is a result when ``valid & advance``."""
        with self._m.If(self.advance):
            self._m.d.sync += [self._o.valid.eq(valid), self._o.payload.eq(payload)]


class HeldResultOutput:
    """The output register of ``o_stream``, its spare being the pipeline's last register:
    :class:`OutputSkid`'s handshake, cycle for cycle, for a block whose last register
    computes its result (an accumulator).

    A result that finds the output register full stays where it was computed, and the
    pipeline stops (``advance`` is registered, as with the spare). So the output register
    has one source, the result, not a multiplexer choosing between it and a spare: the block
    makes its result equal the held one while ``held`` (an accumulator adds zero to itself),
    and restarts its last register when a result ``leaves``.

    Parameters ``m`` and ``o_stream`` as :class:`OutputSkid`'s (no spare, so no layout).

    Members
    -------
    advance : Signal
        High when the pipeline may move (no result held). Registered.
    held : Signal
        The last register holds a result the output register has not taken. Registered.
    """

    def __init__(self, m: Module, o_stream: Any):
        self._m = m
        self._o = o_stream
        # (kept: else synthesis merges it into a copy, which then drives all it drives)
        self.held = Signal(attrs={"keep": 1})
        self.advance = Signal()
        self._copies: list[Signal] = []
        m.d.comb += self.advance.eq(~self.held)

    def held_copy(self, name: str) -> Signal:
        """Another flip-flop equal to ``held``, which synthesis keeps apart (``keep``): a
        pipeline's registers all move on ``advance``, thousands of enables, and each part
        of it may take its own copy, a net of a few hundred. Call before :meth:`push`."""
        copy = Signal(name=name, attrs={"keep": 1})
        self._copies.append(copy)
        return copy

    def push(self, valid: Any, payload: Any) -> Signal:
        """The pipeline's last stage: ``payload`` is a result when ``valid & advance``, and
        the held result while ``held``. Returns ``taken``: the output register takes a
        result this cycle if there is one (``held | valid``: the result leaves, and the
        block's last register may restart)."""
        m, o = self._m, self._o
        new, taken, held_next = Signal(), Signal(), Signal()
        m.d.comb += [new.eq(valid & self.advance),
                     taken.eq(~o.valid | o.ready),
                     held_next.eq(~taken & (self.held | new))]
        with m.If(taken):
            m.d.sync += o.valid.eq(self.held | new)
            with m.If(self.held | new):
                m.d.sync += o.payload.eq(payload)
        m.d.sync += [self.held.eq(held_next), *(c.eq(held_next) for c in self._copies)]
        return taken
