"""IR -> IR passes, one a file. ``lower`` runs them in order."""

from __future__ import annotations

from qfab.compiler.ir import Graph, verify
from qfab.compiler.passes.dyadic import DEFAULT_BITS, dyadic
from qfab.compiler.passes.fuse import fuse_activations
from qfab.compiler.passes.merge import merge_duplicates
from qfab.compiler.passes.ranges import ranges


def lower(graph: Graph, *, multiplier_bits: int = DEFAULT_BITS, check: bool = True) -> Graph:
    """The pipeline after import: duplicate nodes merged, activation fusion, dyadic
    requantization, range analysis."""
    for step in (merge_duplicates, fuse_activations, lambda g: dyadic(g, multiplier_bits),
                 lambda g: (ranges(g), g)[1]):
        graph = step(graph)
        if check:
            verify(graph)
    return graph
