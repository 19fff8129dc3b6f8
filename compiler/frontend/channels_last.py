"""Channels-last models in channels-first form: an ONNX rewrite run before import.

Keras computes channels-last (NHWC). Its exports reach ONNX in two forms: qonnx's channels-last
ops (domain ``qonnx.custom_op.channels_last``: Conv, MaxPool, BatchNormalization, each the
standard op between a transpose to channels-first and one back, the Conv's weight in [O, kh,
kw, I] too), and tf2onnx's standard ops with Transpose nodes around them. Both become standard
ops between transposes here; then each transpose moves through the elementwise ops after it
(Quant, Relu, a Mul by a per-channel constant, ...) until it meets the transpose that undoes
it, and both vanish. What stays is a transpose at a graph input, moved up to it through the
quantizer (the host transposes the float input before quantizing it), and transposes on codes
before a Flatten (no hardware: the stream keeps its order and the next dense layer's weights
are permuted to match, plan.py). A zero Pad (Keras's ZeroPadding2D) moves with the
transposes and then into the Conv that reads it; Squeeze and Unsqueeze of unit axes
(tf2onnx's Conv1D, a Conv of height 1) let them through.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

CHANNELS_LAST_DOMAIN = "qonnx.custom_op.channels_last"
CHANNELS_LAST_OPS = ("Conv", "MaxPool", "BatchNormalization")
# Ops computing each element from the same element of input 0 and constants (the other
# inputs) that broadcast: a transpose moves through them with the constants transposed.
UNARY = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "Elu", "Selu", "Identity",
         "Quant", "IntQuant", "BipolarQuant", "Trunc", "FloatQuant", "Clip", "Cast",
         "QuantizeLinear", "DequantizeLinear"}
BINARY = {"Mul", "Add", "Sub", "Div"}  # with a constant on either side
_AXIS_OPS = {"QuantizeLinear", "DequantizeLinear"}  # a 1-D per-channel scale names its axis


def to_first(rank: int) -> list[int]:
    """The perm taking channels-last to channels-first (NHWC -> NCHW, NLC -> NCL)."""
    return [0, rank - 1, *range(1, rank - 1)]


def to_last(rank: int) -> list[int]:
    return [0, *range(2, rank), 1]


def channels_first(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with its channels-last ops made standard and the transposes that cancel
    removed; the model itself when it has neither channels-last ops nor transposes."""
    if not any(n.domain == CHANNELS_LAST_DOMAIN or n.op_type in ("Transpose", "Pad")
               for n in model.graph.node):
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    rewriter = _Rewriter(out.graph)
    try:
        rewriter.expand()
        rewriter.sink()
        rewriter.hoist_to_inputs()
        rewriter.fold_pads()
    except (IndexError, ValueError, KeyError, TypeError, AttributeError):
        return model  # malformed: the validator names the problem in the model as given
    if not rewriter.changed:
        return model
    rewriter.write_back()
    return out


class _Rewriter:
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
            kernel = _attr(p, "kernel_shape")
            if kernel:
                return len(kernel) + 2
            if p.op_type == "Transpose" and _perm(p):
                return len(_perm(p))
            if not p.input:
                break
            tensor = p.input[0]
        return 4

    # ---- expanding the channels-last ops -----------------------------------------------
    def expand(self) -> None:
        for node in [n for n in self.nodes if n.domain == CHANNELS_LAST_DOMAIN
                     and n.op_type in CHANNELS_LAST_OPS]:
            kernel = _attr(node, "kernel_shape")
            rank = len(kernel) + 2 if kernel else self.rank(node.input[0])
            at = self.nodes.index(node)
            before = []
            x = self.fresh(node.input[0])
            before.append(_transpose(node.input[0], x, to_first(rank)))
            node.input[0] = x
            if node.op_type == "Conv":  # its weight is channels-last too: [O, kh, kw, I]
                w = self.fresh(node.input[1])
                before.append(_transpose(node.input[1], w, to_first(rank)))
                node.input[1] = w
            y = self.fresh(node.output[0])
            after = _transpose(y, node.output[0], to_last(rank))
            node.output[0] = y
            node.domain = ""
            self.nodes[at:at + 1] = [*before, node, after]
            self.changed = True

    # ---- moving transposes down, where they cancel ---------------------------------------
    def sink(self) -> None:
        moved = True
        while moved:
            moved = False
            for t in [n for n in self.nodes if n.op_type == "Transpose"]:
                if t in self.nodes and self._sink_one(t):
                    moved = self.changed = True

    def _sink_one(self, t: onnx.NodeProto) -> bool:
        perm = _perm(t)
        readers = self.readers(t.output[0])
        if perm is None or t.output[0] in self.outputs or not readers:
            return False
        if len(readers) > 1:  # a fork (a residual block): a transpose for each reader
            return self._split_fork(t, readers)
        (e,) = readers
        if e.op_type in BINARY | {"Concat"} and self._sink_past_join(t, e, perm):
            return True
        if e.op_type == "Transpose" and len(_perm(e) or ()) == len(perm):
            self._merge(t, e, perm)
            return True
        if e.op_type in ("ReduceMean", "Squeeze"):
            return self._sink_past_mean(t, e, perm)
        if e.op_type == "Unsqueeze":
            return self._cancel_through_unsqueeze(t, e, perm)
        consts = self._moved_consts(e, t.output[0], perm, inverse=True)
        if consts is None:
            return False
        # x -> T -> e -> y   becomes   x -> e' -> T -> y
        for i, name in enumerate(e.input):
            if name == t.output[0]:
                e.input[i] = t.input[0]
            elif i in consts:
                e.input[i] = consts[i]
        _remap_axis(e, perm)
        moved = self.fresh(e.output[0])
        t.input[0], t.output[0], e.output[0] = moved, e.output[0], moved
        self.nodes.remove(t)
        self.nodes.insert(self.nodes.index(e) + 1, t)
        return True

    def _merge(self, t: onnx.NodeProto, e: onnx.NodeProto, perm: list[int]) -> None:
        """Transpose(perm) then Transpose(q): one transpose, or none when they cancel."""
        q = _perm(e)
        combined = [perm[i] for i in q]
        self.nodes.remove(t)
        if combined == list(range(len(combined))) and e.output[0] not in self.outputs:
            self.nodes.remove(e)
            for n in self.nodes:
                for i, name in enumerate(n.input):
                    if name == e.output[0]:
                        n.input[i] = t.input[0]
            return
        e.input[0] = t.input[0]
        del e.attribute[:]
        e.attribute.append(helper.make_attribute("perm", combined))

    def _split_fork(self, t: onnx.NodeProto, readers: list[onnx.NodeProto]) -> bool:
        """One transpose for each reader of a forked tensor, when each reader can take it
        further (a transpose to cancel, an elementwise op, a residual Add)."""
        if any(r.op_type not in UNARY | BINARY | {"Transpose", "Concat"} or list(r.input).count(
                t.output[0]) != 1 for r in readers):
            return False
        for r in readers[1:]:
            copy = _transpose(t.input[0], self.fresh(t.output[0]), _perm(t))
            self.nodes.insert(self.nodes.index(t) + 1, copy)
            r.input[list(r.input).index(t.output[0])] = copy.output[0]
        return True

    def _sink_past_join(self, t: onnx.NodeProto, e: onnx.NodeProto, perm: list[int]) -> bool:
        """A residual Add (or Mul, ...) or a Concat of tensors all transposed alike: the op
        on the untransposed tensors (a Concat along the axis moved), then one transpose."""
        others = [name for name in e.input if name != t.output[0]]
        sources = [self.producer(name) for name in others]
        if not others or e.output[0] in self.outputs or len(set(e.input)) != len(e.input) or \
                any(u is None or u.op_type != "Transpose" or _perm(u) != perm or
                    len(self.readers(name)) != 1 or name in self.outputs
                    for u, name in zip(sources, others, strict=True)):
            return False
        e.input[list(e.input).index(t.output[0])] = t.input[0]
        for u, name in zip(sources, others, strict=True):
            e.input[list(e.input).index(name)] = u.input[0]
            self.nodes.remove(u)
        for a in e.attribute:
            if e.op_type == "Concat" and a.name == "axis":
                a.i = perm[a.i % len(perm)]
        moved = self.fresh(e.output[0])
        t.input[0], t.output[0], e.output[0] = moved, e.output[0], moved
        self.nodes.remove(t)
        self.nodes.insert(self.nodes.index(e) + 1, t)
        return True

    def _zero_pads(self, e: onnx.NodeProto) -> np.ndarray | None:
        """A Pad's pads as [begin..., end...] when it pads with zeros (constant mode) and
        its pads are a constant; else None."""
        if (_attr(e, "mode") or "constant") != "constant" or _attr(e, "value") or \
                e.output[0] in self.outputs:
            return None
        pads = _attr(e, "pads") if len(e.input) < 2 else self.const(e.input[1])
        value = self.const(e.input[2]) if len(e.input) > 2 and e.input[2] else 0
        if pads is None or value is None or np.any(np.asarray(value) != 0) or \
                (len(e.input) > 3 and e.input[3]):  # axes (opset 18): left as it is
            return None
        return np.asarray(pads, np.int64).reshape(-1)

    def _moved_pads(self, e: onnx.NodeProto, data: str, perm: list[int],
                    inverse: bool) -> dict[int, str] | None:
        """A zero Pad's pads (an input, opset >= 11) with its axes permuted as a transpose
        moves across it: zero padding commutes with transposing."""
        pads = self._zero_pads(e)
        rank = len(perm)
        if pads is None or len(e.input) < 2 or e.input[0] != data or pads.size != 2 * rank:
            return None
        begin, end = pads[:rank], pads[rank:]
        if inverse:  # padding transpose(x, perm) by pads pads x by them, axes moved back
            begin, end = np.empty_like(begin), np.empty_like(end)
            begin[perm], end[perm] = pads[:rank], pads[rank:]
        else:
            begin, end = begin[perm], end[perm]
        name = self.fresh(e.input[1])
        self.inits[name] = numpy_helper.from_array(np.concatenate([begin, end]), name)
        return {1: name}

    def _moved_scales(self, e: onnx.NodeProto, data: str, perm: list[int],
                      inverse: bool) -> dict[int, str] | None:
        """A Resize's scales or sizes (one a axis) permuted as a transpose moves across it;
        a region of interest (tf_crop_and_resize) keeps it in place."""
        if e.input[0] != data or e.output[0] in self.outputs:
            return None
        per_axis = [2, 3] if e.op_type == "Resize" and len(e.input) > 2 else [1]
        if e.op_type == "Resize" and len(e.input) > 1 and e.input[1] and \
                self.const(e.input[1]) is not None and self.const(e.input[1]).size:
            return None
        new = {}
        for i in per_axis:
            if i >= len(e.input) or not e.input[i]:
                continue
            c = self.const(e.input[i])
            if c is None or c.size != len(perm):
                if c is not None and c.size == 0:
                    continue
                return None
            moved = np.empty_like(c)
            if inverse:
                moved[perm] = c
            else:
                moved = c[perm]
            name = self.fresh(e.input[i])
            self.inits[name] = numpy_helper.from_array(moved, name)
            new[i] = name
        return new or None

    def fold_pads(self) -> None:
        """A zero Pad of the spatial axes read only by a Conv (Keras's ZeroPadding2D) goes
        into the Conv's pads: both pad with real zeros."""
        for pad in [n for n in self.nodes if n.op_type == "Pad"]:
            pads = self._zero_pads(pad)
            readers = self.readers(pad.output[0])
            if pads is None or len(readers) != 1 or readers[0].op_type != "Conv" or \
                    readers[0].input[0] != pad.output[0] or pads.size < 6 or \
                    (_attr(readers[0], "auto_pad") or "NOTSET") != "NOTSET":
                continue
            rank = pads.size // 2
            if pads[[0, 1, rank, rank + 1]].any() or (pads < 0).any():
                continue
            conv = readers[0]
            own = _attr(conv, "pads") or [0] * (2 * (rank - 2))
            spatial = [int(v) for v in np.concatenate([pads[2:rank], pads[rank + 2:]])]
            total = [a + b for a, b in zip(own, spatial, strict=True)]
            for a in list(conv.attribute):
                if a.name == "pads":
                    conv.attribute.remove(a)
            conv.attribute.append(helper.make_attribute("pads", total))
            conv.input[0] = pad.input[0]
            self.nodes.remove(pad)
            self.changed = True

    def _axes(self, e: onnx.NodeProto) -> list[int] | None:
        """A Squeeze/Unsqueeze/ReduceMean's axes: its attribute, or its constant input."""
        if len(e.input) > 1 and e.input[1]:
            c = self.const(e.input[1])
            return None if c is None else [int(a) for a in np.asarray(c).reshape(-1)]
        return _attr(e, "axes")

    def _set_axes(self, e: onnx.NodeProto, axes: list[int]) -> None:
        if len(e.input) > 1 and e.input[1]:
            name = self.fresh(e.input[1])
            self.inits[name] = numpy_helper.from_array(np.asarray(axes, np.int64), name)
            e.input[1] = name
            return
        for a in e.attribute:
            if a.name == "axes":
                a.CopyFrom(helper.make_attribute("axes", [int(v) for v in axes]))

    def _sink_past_mean(self, t: onnx.NodeProto, e: onnx.NodeProto, perm: list[int]) -> bool:
        """ReduceMean (or Squeeze: a unit axis dropped) over ``axes`` of transpose(x, perm)
        is the same over perm[axes] of x, then the transpose of the axes left (none to make
        for Keras's GlobalAveragePooling: NHWC means over H, W leave N, C in order)."""
        axes = self._axes(e)
        if not axes or e.output[0] in self.outputs:
            return False
        rank = len(perm)
        axes = sorted(a % rank for a in axes)
        new_axes = sorted(perm[a] for a in axes)
        keep = 0 if e.op_type == "Squeeze" else 1 if _attr(e, "keepdims") is None \
            else _attr(e, "keepdims")
        left = [perm[i] for i in range(rank) if keep or i not in axes]
        rest = perm if keep else list(np.argsort(np.argsort(left)))
        e.input[0] = t.input[0]
        self._set_axes(e, new_axes)
        self.nodes.remove(t)
        if rest != list(range(len(rest))):
            moved = self.fresh(e.output[0])
            self.nodes.insert(self.nodes.index(e) + 1,
                              _transpose(moved, e.output[0], [int(i) for i in rest]))
            e.output[0] = moved
        return True

    def _cancel_through_unsqueeze(self, t: onnx.NodeProto, e: onnx.NodeProto,
                                  perm: list[int]) -> bool:
        """Transpose, Unsqueeze, Transpose that together only insert unit axes (tf2onnx's
        Conv1D: the [N, L, C] sequence made [N, 1, L, C], then NCHW): one Unsqueeze."""
        axes, readers = self._axes(e), self.readers(e.output[0])
        if not axes or len(readers) != 1 or readers[0].op_type != "Transpose" or \
                e.output[0] in self.outputs or _perm(readers[0]) is None:
            return False
        after = _perm(readers[0])
        rank = len(perm) + len(axes)
        axes = sorted(a % rank for a in axes)
        labels: list[int | None] = list(perm)  # which axis of x each axis is (None: new)
        for a in axes:
            labels.insert(a, None)
        if len(after) != rank:
            return False
        labels = [labels[i] for i in after]
        if [v for v in labels if v is not None] != list(range(len(perm))):
            return False
        e.input[0] = t.input[0]
        self._set_axes(e, [i for i, v in enumerate(labels) if v is None])
        e.output[0] = readers[0].output[0]
        self.nodes.remove(t)
        self.nodes.remove(readers[0])
        return True

    def _moved_consts(self, e: onnx.NodeProto, data: str, perm: list[int],
                      inverse: bool) -> dict[int, str] | None:
        """New constant inputs of ``e`` when a transpose by ``perm`` moves across it (past
        it, ``inverse``; or before it), or None when it cannot move."""
        if e.op_type == "Pad":
            return self._moved_pads(e, data, perm, inverse)
        if e.op_type in ("Resize", "Upsample"):
            return self._moved_scales(e, data, perm, inverse)
        if e.op_type not in UNARY | BINARY or e.output[0] in self.outputs:
            return None
        data_at = [i for i, name in enumerate(e.input) if name == data]
        if len(data_at) != 1 or (e.op_type in UNARY and data_at != [0]):
            return None
        if e.op_type in _AXIS_OPS and _attr(e, "axis") is None and any(
                (c := self.const(n)) is not None and c.ndim == 1 and c.size > 1
                for n in e.input[1:]):
            return None  # opset < 13 per-channel form: leave it to the importer's checks
        rank, consts = len(perm), {}
        order = list(np.argsort(perm)) if inverse else list(perm)
        for i, name in enumerate(e.input):
            if i in data_at or not name:
                continue
            c = self.const(name)
            if c is None or c.ndim > rank:
                return None
            if c.size <= 1 or e.op_type in _AXIS_OPS:
                continue  # a scalar, or a 1-D per-axis parameter (its axis is remapped)
            full = c.reshape((1,) * (rank - c.ndim) + c.shape).transpose(order)
            new = self.fresh(name)
            self.inits[new] = numpy_helper.from_array(np.ascontiguousarray(full), new)
            consts[i] = new
        return consts

    # ---- moving the transposes left at a graph input onto it -----------------------------
    def hoist_to_inputs(self) -> None:
        for t in [n for n in self.nodes if n.op_type == "Transpose"]:
            chain = self._chain_to_input(t)
            if not chain:
                continue
            for e, data, perm, new, _ in reversed(chain):  # x -> e -> T  becomes  x -> T -> e'
                if e.op_type == "Unsqueeze":
                    self._set_axes(e, new)
                else:
                    for i, name in new.items():
                        e.input[i] = name
                    _remap_axis(e, list(np.argsort(perm)))
                moved = self.fresh(t.input[0])
                src, out = e.input[data], t.output[0]
                e.input[data], e.output[0] = moved, out
                t.input[0], t.output[0] = src, moved
                self.nodes.remove(t)
                self.nodes.insert(self.nodes.index(e), t)
            del t.attribute[:]
            t.attribute.append(helper.make_attribute("perm", [int(i) for i in chain[0][4]]))
            self.changed = True

    def _perm_above_unsqueeze(self, e: onnx.NodeProto, perm: list[int]):
        """T(perm) after Unsqueeze(axes) of x is Unsqueeze(new axes) after T(new perm) of
        x: (new perm, new axes)."""
        axes = sorted(a % len(perm) for a in self._axes(e))
        labels: list[int | None] = list(range(len(perm) - len(axes)))
        for a in axes:
            labels.insert(a, None)
        moved = [labels[i] for i in perm]
        return [v for v in moved if v is not None], [i for i, v in enumerate(moved) if v is None]

    def _chain_to_input(self, t: onnx.NodeProto) -> list[tuple]:
        """The ops between a graph input and ``t`` (first to last: each op, the index of its
        data input, the transpose's perm below it, what the move changes and the perm above
        it), each read only
        by the next, when ``t`` can move up to the input through them: elementwise ops, zero
        Pads and Unsqueezes."""
        chain, tensor = [], t.input[0]
        perm = _perm(t)
        while tensor not in self.input_ranks:
            p = self.producer(tensor)
            data = [i for i, name in enumerate(p.input) if name and self.const(name) is None] \
                if p is not None else []
            if len(data) != 1 or len(self.readers(tensor)) != 1 or perm is None:
                return []
            if p.op_type == "Unsqueeze" and data == [0] and self._axes(p):
                above, new = self._perm_above_unsqueeze(p, perm)
            else:
                above, new = perm, self._moved_consts(p, p.input[data[0]], perm, inverse=False)
                if new is None:
                    return []
            chain.insert(0, (p, data[0], perm, new, above))
            perm = above
            tensor = p.input[data[0]]
        return chain

    def write_back(self) -> None:
        g = self.graph
        del g.node[:]
        g.node.extend(self.nodes)
        used = {i for n in self.nodes for i in n.input}
        keep = [t for name, t in self.inits.items() if name in used]
        del g.initializer[:]
        g.initializer.extend(keep)
        del g.value_info[:]  # shapes of moved tensors changed; the importer infers its own


def _attr(node: onnx.NodeProto, name: str):
    for a in node.attribute:
        if a.name == name:
            return list(a.ints) if a.type == onnx.AttributeProto.INTS else \
                helper.get_attribute_value(a)
    return None


def _perm(node: onnx.NodeProto) -> list[int] | None:
    """A Transpose's perm when it is one (a Transpose without it reverses the axes, of a
    rank this rewrite may not know: left as it is)."""
    perm = _attr(node, "perm")
    return perm if perm is not None and sorted(perm) == list(range(len(perm))) else None


def _transpose(x: str, y: str, perm: list[int]) -> onnx.NodeProto:
    return helper.make_node("Transpose", [x], [y], name=y, perm=perm)


def _remap_axis(e: onnx.NodeProto, perm: list[int]) -> None:
    """A QuantizeLinear/DequantizeLinear axis on ``transpose(x, perm)``, as an axis of x."""
    if e.op_type not in _AXIS_OPS:
        return
    for a in e.attribute:
        if a.name == "axis":
            a.i = perm[a.i % len(perm)]
