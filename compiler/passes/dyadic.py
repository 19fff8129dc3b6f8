"""Turn float requantization scales into dyadic integer arithmetic (HAWQ-V3 style).

After this pass a requant computes round((v + bias_int) * mult / 2**shift) + zero_point, where
``bias_int`` is the float offset moved before the multiplier and rounded to accumulator units
(so the hardware adds it to the accumulator, as it adds a conv bias), and
an add computes round((a * mult_a + b * mult_b) / 2**shift); the float ``scale``/``offset``
attributes remain only for the ``onnx`` reference mode and for reports.
"""

from __future__ import annotations

import numpy as np
from qfab.compiler.ir import Graph
from qfab.numerics import Dyadic

DEFAULT_BITS = 16


def dyadic(graph: Graph, bits: int = DEFAULT_BITS) -> Graph:
    for node in graph.nodes:
        a = node.attrs
        if node.op == "requant":
            d = Dyadic.from_scale(np.asarray(a["scale"], np.float64), bits=bits)
            a["mult"], a["shift"] = np.asarray(d.mult, np.int64), np.asarray(d.shift, np.int64)
            a["bias_int"] = np.round(np.asarray(a["offset"], np.float64)
                                     / np.asarray(a["scale"], np.float64)).astype(np.int64)
            a["rel_error"] = float(np.max(np.abs(d.rel_error)))
        elif node.op == "add":
            # One shift for both operands, so the sum is formed before the single rounding.
            da = Dyadic.from_scale(a["scale_a"], bits=bits)
            db = Dyadic.from_scale(a["scale_b"], bits=bits)
            shift = int(min(da.shift, db.shift))
            a["mult_a"] = int(round(a["scale_a"] * 2.0**shift))
            a["mult_b"] = int(round(a["scale_b"] * 2.0**shift))
            a["shift"] = shift
    return graph
