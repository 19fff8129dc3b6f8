"""Layout ops: they cost no hardware and only change the order in which elements stream."""

from __future__ import annotations

import numpy as np
from qfab.compiler.backend.mappings import maps
from qfab.compiler.backend.plan import Planner
from qfab.compiler.ir import Node


@maps("reshape")
def reshape(p: Planner, node: Node) -> None:
    pass  # same elements, same stream: only the IR's view changes


@maps("transpose")
def transpose(p: Planner, node: Node) -> None:
    in_t = p.t(node.inputs[0])
    idx = np.arange(int(np.prod(in_t.shape))).reshape(in_t.shape).transpose(
        node.attrs["perm"]).ravel()
    inverse = np.empty_like(idx)
    inverse[idx] = np.arange(idx.size)
    p.order = inverse[p.order]
