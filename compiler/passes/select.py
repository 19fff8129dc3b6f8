"""Keep only what one graph output needs: the backend maps one chain at a time, so a model
with independent sub-graphs is compiled once per output."""

from __future__ import annotations

import copy

from qfab.compiler.ir import Graph

from qfab.errors import QfabError


def select_output(graph: Graph, output: str) -> Graph:
    """A copy of ``graph`` with the nodes, tensors and inputs that ``output`` depends on."""
    if output not in graph.outputs:
        raise QfabError(f"{output!r} is not an output of the model "
                        f"(outputs: {', '.join(graph.outputs)})")
    needed = {output}
    kept = []
    for node in reversed(graph.nodes):
        if needed & set(node.outputs):
            kept.append(node)
            needed |= set(node.inputs)
    g = Graph(name=f"{graph.name}:{output}", nodes=[copy.copy(n) for n in reversed(kept)],
              inputs=[i for i in graph.inputs if i in needed], outputs=[output])
    used = needed | {o for n in kept for o in n.outputs}
    g.tensors = {name: t for name, t in graph.tensors.items() if name in used}
    return g
