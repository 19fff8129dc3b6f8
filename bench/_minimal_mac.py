"""The hand-written minimal multiply-accumulate the bench measures an MVU lane against."""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Module, Shape
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class MinimalMac(wiring.Component):
    """``acc += a * b`` every cycle, nothing else: the floor a MAC lane's LUTs are held to.

    Parameters
    ----------
    a_shape, b_shape, acc_shape : Shape
        Operand and accumulator shapes.
    """

    def __init__(self, *, a_shape: Any, b_shape: Any, acc_shape: Any):
        super().__init__({"a": In(Shape.cast(a_shape)), "b": In(Shape.cast(b_shape)),
                          "acc": Out(Shape.cast(acc_shape))})

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        m.d.sync += self.acc.eq(self.acc + self.a * self.b)
        return m
