"""Checks of the standard ops' attributes and constants, and the table of every op's checks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from qfab.compiler.frontend.validate import quantizers, windows
from qfab.compiler.frontend.validate.node import CheckedNode


def _gemm(n: CheckedNode) -> None:
    n.flag("transA", 0)
    n.flag("transB", 0)
    n.float_attr("alpha")
    n.float_attr("beta")


def _batch_norm(n: CheckedNode) -> None:
    n.float_attr("epsilon")
    a = n.attrs.get("epsilon")
    eps = a.f if a is not None else 1e-5
    for i, what in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")):
        n.finite(i, what)
    var = n.const(4)
    if var is not None and np.any(var.astype(np.float64) + eps <= 0):
        raise n.fail(f"variance {n.node.input[4]!r} + epsilon is not positive")


def _clip(n: CheckedNode) -> None:
    for i in (1, 2):
        v = n.const(i)
        if v is not None and v.dtype.kind == "f" and np.any(np.isnan(v)):
            raise n.fail(f"bound {n.node.input[i]!r} is NaN")
    for name in ("min", "max"):
        a = n.attrs.get(name)
        if a is not None and np.isnan(a.f):
            raise n.fail(f"attribute {name} is NaN")


def _arith(n: CheckedNode) -> None:
    for i in (0, 1):
        n.finite(i, "constant")
    if n.node.op_type == "Div":
        d = n.const(1)
        if d is not None and np.any(d == 0):
            raise n.fail(f"divisor {n.node.input[1]!r} holds a zero")


NODE_CHECKS: dict[str, Callable[[CheckedNode], None]] = {
    **{op: windows.check_window for op in windows.WINDOW_OPS},
    **quantizers.CHECKS,  # QLinearConv's and QLinearAveragePool's check their windows too
    "Gemm": _gemm,
    "BatchNormalization": _batch_norm,
    "Clip": _clip,
    "Mul": _arith,
    "Div": _arith,
    "Add": _arith,
    "Sub": _arith,
}
