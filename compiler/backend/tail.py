"""The firmware tail: IR ops after the accelerator's output that the SoC's control core runs
(DESIGN.md, "ops the fabric lacks run on the control core").

The plan leaves the trailing nodes whose op has a writer here out of the fabric
(``HwPlan.tail``); this module writes them as C for ``qfab_model.h``: each node's constant
tables and one call of its kernel in ``firmware/include/qfab_tail.h``, chained through
buffers from the accelerator's output codes (in the model's flat order) to the tail's output
codes, which the firmware stores for the host. An op joins the tail with three pieces: a
kernel in qfab_tail.h, its reference op in sim/reference.py (the same integer arithmetic)
and a writer here, registered with ``@writes``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from qfab.compiler.ir import Node

from qfab.errors import QfabError

# (node, index in the tail, input shape, source buffer, destination buffer) -> (C
# declarations of its tables, the kernel call)
Writer = Callable[[Node, int, tuple, str, str], tuple[list[str], str]]
WRITERS: dict[str, Writer] = {}
# Ops on the graph's outputs the host computes from codes: the dequantization, or a TopK's
# argmax over the scores.
HOST_OPS = ("dequantize", "argmax")
# int32 buffers (the tail's input and intermediate tensors) in the firmware's data, which the
# job area bounds at 16 KiB with the runtime's own data.
MAX_BUFFER_BYTES = 8192


def writes(op: str) -> Callable[[Writer], Writer]:
    def register(fn: Writer) -> Writer:
        WRITERS[op] = fn
        return fn

    return register


def is_tail_op(op: str) -> bool:
    return op in WRITERS


def _array(ctype: str, name: str, values) -> str:
    body = ", ".join(str(int(v)) for v in np.asarray(values).reshape(-1))
    return f"static const {ctype} {name}[{np.size(values)}] = {{{body}}};"


@writes("softmax")
def _softmax(node: Node, i: int, shape, src: str, dst: str) -> tuple[list[str], str]:
    a = node.attrs
    table = np.asarray(a["table"], np.int64)
    cols = shape[-1]
    if int(table.max()) * a["num"] >= 2**32 or int(table.max()) * cols >= 2**31:
        raise QfabError(f"node {node.name!r}: softmax over {cols} codes with 1 / output scale "
                        f"{a['num']} passes the firmware's 32-bit arithmetic")
    rows = int(np.prod(shape[1:])) // cols
    decl = [_array("uint16_t", f"qfab_tail{i}_coarse", table),
            _array("uint16_t", f"qfab_tail{i}_fine", a["fine"])]
    call = (f"qfab_softmax({src}, {dst}, {rows}u, {cols}u, qfab_tail{i}_coarse, {table.size}u, "
            f"qfab_tail{i}_fine, {a['shift']}u, {a['num']}u, {a['zero_point']}, {a['lo']}, "
            f"{a['hi']});")
    return decl, call


@writes("lookup")
def _lookup(node: Node, i: int, shape, src: str, dst: str) -> tuple[list[str], str]:
    a = node.attrs
    decl = [_array("int32_t", f"qfab_tail{i}_table", a["table"])]
    n = int(np.prod(shape[1:]))
    return decl, f"qfab_lookup({src}, {dst}, {n}u, qfab_tail{i}_table, {a['in_min']});"


def split_tail(graph, nodes: list[Node]) -> tuple[list[Node], list[str], list[Node]]:
    """(the accelerator's nodes, its output tensors, the tail) of ``nodes`` (in graph order,
    the input's quantizer taken off).

    The dequantizations (and argmax) of graph outputs are the host's. A model with one output
    (or logits and what the control core computes from them) may end in a chain of tail ops
    the control core runs: a model whose outputs are a classifier's logits and their softmax
    is one design. Otherwise every output's codes come from the accelerator."""
    by_output = {n.outputs[0]: n.inputs[0] for n in nodes
                 if n.op in HOST_OPS and n.outputs[0] in graph.outputs}
    nodes = [n for n in nodes if n.outputs[0] not in by_output]
    codes = list(dict.fromkeys(by_output.get(o, o) for o in graph.outputs))
    tail: list[Node] = []
    while nodes and is_tail_op(nodes[-1].op) and nodes[-1].outputs[0] == (
            tail[0].inputs[0] if tail else codes[-1]):
        tail.insert(0, nodes.pop())
    if not tail:
        return nodes, codes, tail
    end = tail[0].inputs[0]
    ends = {end, tail[-1].outputs[0]}
    for name, code in zip(graph.outputs, [by_output.get(o, o) for o in graph.outputs],
                          strict=True):
        if code not in ends:
            raise QfabError(f"graph output {name!r} is not the accelerator's output or "
                            f"computed from it by the control core ({', '.join(sorted(ends))}"
                            "); build it on its own with --output-name")
    return nodes, [end], tail


def _elems(plan, tensor: str) -> int:
    return int(np.prod(plan.graph.tensors[tensor].shape[1:]))


def tail_elems(plan) -> int:
    """Codes the tail stores per inference (0: no tail)."""
    return _elems(plan, plan.tail[-1].outputs[0]) if plan.tail else 0


def tail_c(plan) -> list[str]:
    """Lines of ``qfab_model.h`` defining ``qfab_tail(in, out)`` (none without a tail)."""
    if not plan.tail:
        return []
    buffers = [_elems(plan, plan.output)] + [_elems(plan, n.outputs[0]) for n in plan.tail[:-1]]
    if 4 * sum(buffers) > MAX_BUFFER_BYTES:
        raise QfabError(f"node {plan.tail[0].name!r} ({plan.tail[0].op}): the control core's "
                        f"tail needs {4 * sum(buffers)} bytes of buffers, more than its "
                        f"{MAX_BUFFER_BYTES}; the accelerator's output is too large for it")
    lines = ["", "/* The firmware tail: ops the accelerator lacks (compiler/backend/tail.py) */",
             "#include \"qfab_tail.h\"", f"#define QFAB_TAIL_ELEMS {tail_elems(plan)}u"]
    calls = []
    src = "in"
    for i, node in enumerate(plan.tail):
        dst = "out" if i == len(plan.tail) - 1 else f"qfab_tail{i}_buf"
        if dst != "out":
            lines.append(f"static int32_t {dst}[{buffers[i + 1]}];")
        shape = plan.graph.tensors[node.inputs[0]].shape
        decl, call = WRITERS[node.op](node, i, shape, src, dst)
        lines += decl
        calls.append("    " + call)
        src = dst
    return lines + ["static void qfab_tail(const int32_t *in, int32_t *out) {", *calls, "}"]
