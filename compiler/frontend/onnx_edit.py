"""An ONNX graph open for rewriting: its nodes as a list, its initializers by name, and the
lookups a rewrite needs (who makes a tensor, who reads it, its constant value, its rank).
Rewrites run on a copy of the model before import and write the result back at the end."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


class GraphEdit:
    def __init__(self, graph: onnx.GraphProto):
        self.graph = graph
        self.nodes = list(graph.node)
        self.inits = {t.name: t for t in graph.initializer}
        self.outputs = {o.name for o in graph.output}
        self.input_ranks = {i.name: len(i.type.tensor_type.shape.dim) for i in graph.input}
        self.changed = False
        self._count = 0

    def fresh(self, base: str) -> str:
        taken = {o for n in self.nodes for o in n.output} | set(self.inits) | \
            set(self.input_ranks)
        while True:
            self._count += 1
            name = f"{base}_cf{self._count}"
            if name not in taken:
                return name

    def producer(self, tensor: str) -> onnx.NodeProto | None:
        return next((n for n in self.nodes if tensor in n.output), None)

    def readers(self, tensor: str) -> list[onnx.NodeProto]:
        return [n for n in self.nodes if tensor in n.input]

    def const(self, name: str) -> np.ndarray | None:
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        p = self.producer(name)
        if p is not None and p.op_type == "Constant" and p.attribute and \
                p.attribute[0].type == onnx.AttributeProto.TENSOR:
            return numpy_helper.to_array(p.attribute[0].t)
        return None

    def rank(self, tensor: str) -> int:
        """The rank of ``tensor``, from the graph input or window op it comes from through
        ops that keep the rank (4, an image, when nothing says)."""
        for _ in range(len(self.nodes) + 1):
            if tensor in self.input_ranks:
                return self.input_ranks[tensor]
            p = self.producer(tensor)
            if p is None:
                break
            kernel = attr(p, "kernel_shape")
            if kernel:
                return len(kernel) + 2
            if p.op_type == "Transpose" and perm_of(p):
                return len(perm_of(p))
            if not p.input:
                break
            tensor = p.input[0]
        return 4

    def axes(self, e: onnx.NodeProto) -> list[int] | None:
        """A Squeeze/Unsqueeze/ReduceMean's axes: its attribute, or its constant input."""
        if len(e.input) > 1 and e.input[1]:
            c = self.const(e.input[1])
            return None if c is None else [int(a) for a in np.asarray(c).reshape(-1)]
        return attr(e, "axes")

    def set_axes(self, e: onnx.NodeProto, axes: list[int]) -> None:
        if len(e.input) > 1 and e.input[1]:
            name = self.fresh(e.input[1])
            self.inits[name] = numpy_helper.from_array(np.asarray(axes, np.int64), name)
            e.input[1] = name
            return
        for a in e.attribute:
            if a.name == "axes":
                a.CopyFrom(helper.make_attribute("axes", [int(v) for v in axes]))

    def zero_pads(self, e: onnx.NodeProto) -> np.ndarray | None:
        """A Pad's pads as [begin..., end...] when it pads with zeros (constant mode) and
        its pads are a constant; else None."""
        if (attr(e, "mode") or "constant") != "constant" or attr(e, "value") or \
                e.output[0] in self.outputs:
            return None
        pads = attr(e, "pads") if len(e.input) < 2 else self.const(e.input[1])
        value = self.const(e.input[2]) if len(e.input) > 2 and e.input[2] else 0
        if pads is None or value is None or np.any(np.asarray(value) != 0) or \
                (len(e.input) > 3 and e.input[3]):  # axes (opset 18): left as it is
            return None
        return np.asarray(pads, np.int64).reshape(-1)

    def write_back(self) -> None:
        g = self.graph
        del g.node[:]
        g.node.extend(self.nodes)
        used = {i for n in self.nodes for i in n.input}
        keep = [t for name, t in self.inits.items() if name in used]
        del g.initializer[:]
        g.initializer.extend(keep)
        del g.value_info[:]  # shapes of moved tensors changed; the importer infers its own


def attr(node: onnx.NodeProto, name: str):
    for a in node.attribute:
        if a.name == name:
            return list(a.ints) if a.type == onnx.AttributeProto.INTS else \
                helper.get_attribute_value(a)
    return None


def perm_of(node: onnx.NodeProto) -> list[int] | None:
    """A Transpose's perm when it is one (a Transpose without it reverses the axes, of a
    rank this rewrite may not know: left as it is)."""
    perm = attr(node, "perm")
    return perm if perm is not None and sorted(perm) == list(range(len(perm))) else None


def transpose_node(x: str, y: str, perm: list[int]) -> onnx.NodeProto:
    return helper.make_node("Transpose", [x], [y], name=y, perm=perm)
