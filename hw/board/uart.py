"""An 8N1 UART: a transmitter and a receiver, each a stream of bytes."""

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class _Uart(wiring.Component):
    """What both halves share: a fixed signature (annotations) and the bit time."""

    def __init__(self, *, divisor: int) -> None:
        if not isinstance(divisor, int) or divisor < 4:
            raise ValueError(f"UART divisor must be an integer of at least 4, not {divisor!r}")
        self._divisor = divisor
        super().__init__()

    @property
    def divisor(self) -> int:
        return self._divisor


class UartTx(_Uart):
    """Sends each byte of ``i_stream`` as one 8N1 frame on ``tx``.

    Parameters
    ----------
    divisor : int
        Clock cycles a bit (the clock frequency over the baud rate).

    Members
    -------
    i_stream : In(stream.Signature(8))
        Bytes to send; one is taken whenever the line is idle.
    tx : Out(1)
        The serial line, high when idle.
    """

    i_stream: In(stream.Signature(8))
    tx: Out(1, init=1)

    def elaborate(self, platform) -> Module:
        m = Module()
        frame = Signal(10)         # stop bit, data LSB first, start bit; shifted out at bit 0
        bits_left = Signal(range(11))
        timer = Signal(range(self._divisor))
        m.d.comb += self.i_stream.ready.eq(bits_left == 0)
        with m.If(self.i_stream.valid & self.i_stream.ready):
            m.d.sync += [frame.eq((1 << 9) | (self.i_stream.payload << 1)), bits_left.eq(10),
                         timer.eq(0)]
        with m.Elif(bits_left != 0):
            m.d.sync += self.tx.eq(frame[0])
            with m.If(timer == self._divisor - 1):
                m.d.sync += [timer.eq(0), frame.eq(frame >> 1), bits_left.eq(bits_left - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer + 1)
        with m.Else():
            m.d.sync += self.tx.eq(1)
        return m


class UartRx(_Uart):
    """Receives 8N1 frames on ``rx`` into ``o_stream``, one byte a frame.

    The line is sampled in the middle of each bit, timed from the start bit's falling edge;
    a frame whose stop bit is low is dropped, and the next start bit is looked for once the
    line has gone high again. A byte not taken before the next frame ends is
    overwritten (the host paces itself; the bridge that reads this keeps up).

    Parameters
    ----------
    divisor : int
        Clock cycles a bit.

    Members
    -------
    rx : In(1)
        The serial line (synchronized here).
    o_stream : Out(stream.Signature(8))
        The bytes received.
    """

    rx: In(1, init=1)
    o_stream: Out(stream.Signature(8))

    def elaborate(self, platform) -> Module:
        m = Module()
        sync_rx = Signal(2, init=0b11)
        m.d.sync += sync_rx.eq((sync_rx << 1) | self.rx)
        line = sync_rx[1]
        timer = Signal(range(self._divisor + self._divisor // 2))
        shift = Signal(9)          # eight data bits, then the stop bit, entering at the top
        bits_left = Signal(range(10))
        with m.If(self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)
        with m.FSM():
            with m.State("idle"):
                with m.If(~line):
                    # First sample one and a half bits after the start bit's edge.
                    m.d.sync += [timer.eq(self._divisor + self._divisor // 2 - 1),
                                 bits_left.eq(9)]
                    m.next = "frame"
            with m.State("frame"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq((line << 8) | (shift >> 1)),
                                 bits_left.eq(bits_left - 1), timer.eq(self._divisor - 1)]
                    with m.If(bits_left == 1):
                        with m.If(line):
                            m.d.sync += [self.o_stream.payload.eq(shift[1:9]),
                                         self.o_stream.valid.eq(1)]
                            m.next = "idle"
                        with m.Else():
                            m.next = "break"
            with m.State("break"):
                # After a framing error, a start bit is only looked for once the line idles.
                with m.If(line):
                    m.next = "idle"
        return m
