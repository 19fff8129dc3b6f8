"""The backend's op mappings: one module a mapping family, each function turning one IR node
into hardware stages (lists of ``BlockSpec``) on the planner's stream.

A mapping is registered with ``@maps("op", ...)`` as the frontend's handlers are with
``@handles``; the planner (``plan.py``) keeps the stream state (element order, elements a
beat, the bias waiting for the next stage, the open skip connection) and the folding, and
calls the mapping of each node in stream order.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qfab.compiler.backend.plan import Planner
    from qfab.compiler.ir import Node

Mapping = Callable[["Planner", "Node"], None]
MAPPINGS: dict[str, Mapping] = {}
# Imported in this order, which is also the order the "supported" list names the ops.
FAMILIES = ("matrix_vector", "threshold", "window_pool", "joins", "layout", "resize")


def maps(*ops: str) -> Callable[[Mapping], Mapping]:
    def register(fn: Mapping) -> Mapping:
        for op in ops:
            MAPPINGS[op] = fn
        return fn

    return register


def all_mappings() -> dict[str, Mapping]:
    """IR op -> its mapping, every family loaded."""
    for family in FAMILIES:
        importlib.import_module(f"{__name__}.{family}")
    return MAPPINGS
