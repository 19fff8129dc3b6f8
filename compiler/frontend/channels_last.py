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
from qfab.compiler.frontend.onnx_edit import GraphEdit, attr, perm_of, transpose_node
from qfab.compiler.frontend.pad_fold import fold_pads

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
        fold_pads(rewriter)
    except (IndexError, ValueError, KeyError, TypeError, AttributeError):
        return model  # malformed: the validator names the problem in the model as given
    if not rewriter.changed:
        return model
    rewriter.write_back()
    return out


class _Rewriter(GraphEdit):
    # ---- expanding the channels-last ops -----------------------------------------------
    def expand(self) -> None:
        for node in [n for n in self.nodes if n.domain == CHANNELS_LAST_DOMAIN
                     and n.op_type in CHANNELS_LAST_OPS]:
            kernel = attr(node, "kernel_shape")
            rank = len(kernel) + 2 if kernel else self.rank(node.input[0])
            at = self.nodes.index(node)
            before = []
            x = self.fresh(node.input[0])
            before.append(transpose_node(node.input[0], x, to_first(rank)))
            node.input[0] = x
            if node.op_type == "Conv":  # its weight is channels-last too: [O, kh, kw, I]
                w = self.fresh(node.input[1])
                before.append(transpose_node(node.input[1], w, to_first(rank)))
                node.input[1] = w
            y = self.fresh(node.output[0])
            after = transpose_node(y, node.output[0], to_last(rank))
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
        perm = perm_of(t)
        readers = self.readers(t.output[0])
        if perm is None or t.output[0] in self.outputs or not readers:
            return False
        if len(readers) > 1:  # a fork (a residual block): a transpose for each reader
            return self._split_fork(t, readers)
        (e,) = readers
        if e.op_type in BINARY | {"Concat"} and self._sink_past_join(t, e, perm):
            return True
        if e.op_type == "Transpose" and len(perm_of(e) or ()) == len(perm):
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
        q = perm_of(e)
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
            copy = transpose_node(t.input[0], self.fresh(t.output[0]), perm_of(t))
            self.nodes.insert(self.nodes.index(t) + 1, copy)
            r.input[list(r.input).index(t.output[0])] = copy.output[0]
        return True

    def _sink_past_join(self, t: onnx.NodeProto, e: onnx.NodeProto, perm: list[int]) -> bool:
        """A residual Add (or Mul, ...) or a Concat of tensors all transposed alike: the op
        on the untransposed tensors (a Concat along the axis moved), then one transpose."""
        others = [name for name in e.input if name != t.output[0]]
        sources = [self.producer(name) for name in others]
        if not others or e.output[0] in self.outputs or len(set(e.input)) != len(e.input) or \
                any(u is None or u.op_type != "Transpose" or perm_of(u) != perm or
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

    def _moved_pads(self, e: onnx.NodeProto, data: str, perm: list[int],
                    inverse: bool) -> dict[int, str] | None:
        """A zero Pad's pads (an input, opset >= 11) with its axes permuted as a transpose
        moves across it: zero padding commutes with transposing."""
        pads = self.zero_pads(e)
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

    def _sink_past_mean(self, t: onnx.NodeProto, e: onnx.NodeProto, perm: list[int]) -> bool:
        """ReduceMean (or Squeeze: a unit axis dropped) over ``axes`` of transpose(x, perm)
        is the same over perm[axes] of x, then the transpose of the axes left (none to make
        for Keras's GlobalAveragePooling: NHWC means over H, W leave N, C in order)."""
        axes = self.axes(e)
        if not axes or e.output[0] in self.outputs:
            return False
        rank = len(perm)
        axes = sorted(a % rank for a in axes)
        new_axes = sorted(perm[a] for a in axes)
        keep = 0 if e.op_type == "Squeeze" else 1 if attr(e, "keepdims") is None \
            else attr(e, "keepdims")
        left = [perm[i] for i in range(rank) if keep or i not in axes]
        rest = perm if keep else list(np.argsort(np.argsort(left)))
        e.input[0] = t.input[0]
        self.set_axes(e, new_axes)
        self.nodes.remove(t)
        if rest != list(range(len(rest))):
            moved = self.fresh(e.output[0])
            self.nodes.insert(self.nodes.index(e) + 1,
                              transpose_node(moved, e.output[0], [int(i) for i in rest]))
            e.output[0] = moved
        return True

    def _cancel_through_unsqueeze(self, t: onnx.NodeProto, e: onnx.NodeProto,
                                  perm: list[int]) -> bool:
        """Transpose, Unsqueeze, Transpose that together only insert unit axes (tf2onnx's
        Conv1D: the [N, L, C] sequence made [N, 1, L, C], then NCHW): one Unsqueeze."""
        axes, readers = self.axes(e), self.readers(e.output[0])
        if not axes or len(readers) != 1 or readers[0].op_type != "Transpose" or \
                e.output[0] in self.outputs or perm_of(readers[0]) is None:
            return False
        after = perm_of(readers[0])
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
        self.set_axes(e, [i for i, v in enumerate(labels) if v is None])
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
        if e.op_type in _AXIS_OPS and attr(e, "axis") is None and any(
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
                    self.set_axes(e, new)
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
        axes = sorted(a % len(perm) for a in self.axes(e))
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
        perm = perm_of(t)
        while tensor not in self.input_ranks:
            p = self.producer(tensor)
            data = [i for i, name in enumerate(p.input) if name and self.const(name) is None] \
                if p is not None else []
            if len(data) != 1 or len(self.readers(tensor)) != 1 or perm is None:
                return []
            if p.op_type == "Unsqueeze" and data == [0] and self.axes(p):
                above, new = self._perm_above_unsqueeze(p, perm)
            else:
                above, new = perm, self._moved_consts(p, p.input[data[0]], perm, inverse=False)
                if new is None:
                    return []
            chain.insert(0, (p, data[0], perm, new, above))
            perm = above
            tensor = p.input[data[0]]
        return chain



def _remap_axis(e: onnx.NodeProto, perm: list[int]) -> None:
    """A QuantizeLinear/DequantizeLinear axis on ``transpose(x, perm)``, as an axis of x."""
    if e.op_type not in _AXIS_OPS:
        return
    for a in e.attribute:
        if a.name == "axis":
            a.i = perm[a.i % len(perm)]
