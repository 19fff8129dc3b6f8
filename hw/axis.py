"""An AXI4-Stream top around an accelerator, for vendor block designs and SoC builders."""

from amaranth import Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


def padded_bits(width: int) -> int:
    """``width`` rounded up to whole bytes, as AXI4-Stream's TDATA must be."""
    return 8 * ((width + 7) // 8)


class AxisWrapper(wiring.Component):
    """An accelerator (a Component with ``i_stream`` and ``o_stream``) with AXI4-Stream ports.

    ``s_axis_tdata`` carries one input beat in its low bits (element 0 lowest); the padding
    bits up to a whole byte are ignored, and so is ``s_axis_tlast``: the accelerator counts
    beats itself. ``m_axis_tdata`` carries one output beat, zero-padded to whole bytes, and
    ``m_axis_tlast`` is high on the last beat of each inference. TDATA and TLAST are held while
    TVALID waits for TREADY, as AXI4-Stream requires.

    Parameters
    ----------
    accel : wiring.Component
        The accelerator; added as the submodule ``accel``.
    out_beats : int
        Output beats an inference.

    Members
    -------
    s_axis_tdata, s_axis_tvalid, s_axis_tlast : In
    s_axis_tready : Out(1)
    m_axis_tdata, m_axis_tvalid, m_axis_tlast : Out
    m_axis_tready : In(1)
    """

    def __init__(self, accel: wiring.Component, *, out_beats: int) -> None:
        if not isinstance(out_beats, int) or out_beats < 1:
            raise ValueError(f"AxisWrapper out_beats must be a positive integer, not "
                             f"{out_beats!r}")
        self._accel = accel
        self._out_beats = out_beats
        self._in_bits = len(Value.cast(accel.i_stream.payload))
        self._out_bits = len(Value.cast(accel.o_stream.payload))
        super().__init__({
            "s_axis_tdata": In(padded_bits(self._in_bits)), "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1), "s_axis_tlast": In(1),
            "m_axis_tdata": Out(padded_bits(self._out_bits)), "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1), "m_axis_tlast": Out(1),
        })

    @property
    def out_beats(self) -> int:
        return self._out_beats

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.accel = accel = self._accel
        m.d.comb += [
            accel.i_stream.valid.eq(self.s_axis_tvalid),
            accel.i_stream.payload.eq(self.s_axis_tdata[:self._in_bits]),
            self.s_axis_tready.eq(accel.i_stream.ready),
            self.m_axis_tvalid.eq(accel.o_stream.valid),
            self.m_axis_tdata.eq(Value.cast(accel.o_stream.payload)),
            accel.o_stream.ready.eq(self.m_axis_tready),
        ]
        beat = Signal(range(self._out_beats))
        m.d.comb += self.m_axis_tlast.eq(beat == self._out_beats - 1)
        with m.If(self.m_axis_tvalid & self.m_axis_tready):
            with m.If(self.m_axis_tlast):
                m.d.sync += beat.eq(0)
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
        return m
