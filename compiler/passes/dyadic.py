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

from qfab.errors import QfabError

DEFAULT_BITS = 16
# A requantization multiplier (input unit / output scale) outside this range makes every
# output the zero point or saturates it, for any accumulator qfab builds: a model's scales
# contradict each other (a scale of 1e30 somewhere), so it is a user error, not arithmetic
# to carry out in ever wider integers.
MIN_RATIO, MAX_RATIO = 2.0**-48, 2.0**24


def check_ratio(node_name: str, ratio, what: str = "requantization multiplier") -> None:
    """Raise a one-line QfabError when a multiplier is not finite or outside the range a
    meaningful model gives (see MIN_RATIO)."""
    r = np.abs(np.asarray(ratio, np.float64))
    bad = ~np.isfinite(r) | (r < MIN_RATIO) | (r > MAX_RATIO)
    if bad.any():
        v = r.reshape(-1)[np.argmax(bad.reshape(-1))]
        raise QfabError(f"node {node_name!r}: {what} {v:.3g} (input scale / output scale) is "
                        f"outside 2^-48..2^24; the model's scales contradict each other")


def dyadic(graph: Graph, bits: int = DEFAULT_BITS) -> Graph:
    for node in graph.nodes:
        a = node.attrs
        if node.op == "requant":
            check_ratio(node.name, a["scale"])
            d = Dyadic.from_scale(np.asarray(a["scale"], np.float64), bits=bits)
            a["mult"], a["shift"] = np.asarray(d.mult, np.int64), np.asarray(d.shift, np.int64)
            a["bias_int"] = np.round(np.asarray(a["offset"], np.float64)
                                     / np.asarray(a["scale"], np.float64)).astype(np.int64)
            a["rel_error"] = float(np.max(np.abs(d.rel_error)))
        elif node.op == "add":
            # One shift for both operands, so the sum is formed before the single rounding.
            check_ratio(node.name, [a["scale_a"], a["scale_b"]], "add operand multiplier")
            da = Dyadic.from_scale(a["scale_a"], bits=bits)
            db = Dyadic.from_scale(a["scale_b"], bits=bits)
            shift = int(min(da.shift, db.shift))
            a["mult_a"] = int(round(a["scale_a"] * 2.0**shift))
            a["mult_b"] = int(round(a["scale_b"] * 2.0**shift))
            a["shift"] = shift
    return graph
