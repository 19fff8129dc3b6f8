"""Keep only what some graph outputs need (``--output-name``): a model whose outputs the
hardware cannot build together (independent sub-graphs on several inputs) is compiled once per
output, and a user may build fewer outputs than the model has."""

from __future__ import annotations

import copy

from qfab.compiler.ir import Graph

from qfab.errors import QfabError


def select_output(graph: Graph, output: str | list[str]) -> Graph:
    """A copy of ``graph`` with the nodes, tensors and inputs that the outputs named by
    ``output`` (a name, a comma-separated list or a list of names) depend on."""
    names = [output] if isinstance(output, str) else list(output)
    names = list(dict.fromkeys(n.strip() for name in names for n in name.split(",")
                               if n.strip()))
    if not names:
        raise QfabError("--output-name names no output")
    for name in names:
        if name not in graph.outputs:
            raise QfabError(f"{name!r} is not an output of the model "
                            f"(outputs: {', '.join(graph.outputs)})")
    needed = set(names)
    kept = []
    for node in reversed(graph.nodes):
        if needed & set(node.outputs):
            kept.append(node)
            needed |= set(node.inputs)
    g = Graph(name=f"{graph.name}:{','.join(names)}",
              nodes=[copy.copy(n) for n in reversed(kept)],
              inputs=[i for i in graph.inputs if i in needed],
              outputs=[o for o in graph.outputs if o in names])
    used = needed | {o for n in kept for o in n.outputs}
    g.tensors = {name: t for name, t in graph.tensors.items() if name in used}
    return g
