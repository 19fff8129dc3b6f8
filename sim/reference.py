"""The golden model: executes the integer IR with integers only.

Every op works on int64 arrays (Python-int object arrays where an exact result may need more
than 63 bits). Large dot products use float64 BLAS only where the exact result provably fits
in 53 bits. ``quantize``, ``dynamic_quantize`` and ``dequantize`` at the graph boundary are the
only float steps (:mod:`qfab.sim.reference_boundary`).

Requantization has two modes: ``"dyadic"`` (integer multiply, add, shift: what the hardware
does) and ``"onnx"`` (the float scale multiply with round-half-even that onnxruntime does), so
the importer can be checked exactly against onnxruntime and the dyadic difference measured.
In ``"onnx"`` mode a requant of an 8-bit conv/matmul accumulator multiplies in float32 by
float32(float32(x_scale * w_scale) / y_scale), as onnxruntime's QLinearConv/QLinearMatMul do
(attribute ``scale_f32``); every other requant multiplies in float64, which is exact enough to
round the true value. Where onnxruntime itself computes in float32 between DequantizeLinear and
QuantizeLinear (a QDQ AveragePool, say), the two can differ by one code at a rounding tie.

Speed: weights are prepared once per graph, BLAS runs on one thread where OpenBLAS would
thread a product (the products are small and threads only contend), and rounding shifts on
int64 take a two-operation fast path; that shared arithmetic (products, convolution, rounding
shifts) is :mod:`qfab.sim.reference_products`.
"""

from __future__ import annotations

import collections
import contextlib

import numpy as np
from qfab.compiler.ir import Acc, Graph, Node, Tensor
from qfab.numerics import FixedFormat, IntFormat, MinifloatFormat, round_real
from qfab.sim import reference_boundary as boundary
from qfab.sim.reference_products import (
    BLAS_ONE_THREAD_WORK,
    Matrix,
    _exact_matmul,
    _less_zero_point,
    _nonzero,
    _OneBlasThread,
    _pad,
    _product_work,
    _scratch,
    _windows,
    conv,
    shift_round,
)

from qfab.errors import QfabError

REQUANT_MODES = ("dyadic", "onnx")
_NO_LIMIT = contextlib.nullcontext()  # reusable: made once
_FEW_THRESHOLDS = 8  # thresholds a channel up to which counting goes one threshold at a time


def fixed(t: Tensor, codes: np.ndarray, *, float_codes: bool = False) -> np.ndarray:
    """The exact value of ``codes`` in units of 2**lsb_exponent, as integers. Codes are
    integers; ``float_codes``: they may also be the float32 working array of a quantizer that
    only fused layers read (``Reference._float_codes``: exact integers), taken as they are.
    Any other float array is an error (``ValueError`` naming the tensor)."""
    dtype = getattr(codes, "dtype", None)
    if isinstance(t.fmt, Acc) or (isinstance(t.fmt, IntFormat | FixedFormat) and (
            dtype == np.int64 or (float_codes and dtype == np.float32))):
        return codes  # already the value (no op here writes into its inputs)
    if dtype is not None and dtype.kind == "f":
        raise ValueError(f"tensor {t.name!r}: {t.fmt} codes must be integers, not {dtype} "
                         "(float32 codes are a quantizer's, for the fused layers reading it)")
    if isinstance(t.fmt, MinifloatFormat) and not np.isfinite(t.fmt.decode(codes)).all():
        # A quantizer with saturate=0 makes a value past the format's range NaN or
        # infinity (as ONNX defines), which integer arithmetic cannot carry.
        raise QfabError(f"tensor {t.name!r}: a {t.fmt} NaN or infinity reaches an integer "
                        "layer (a value beyond the format's range, quantized with "
                        "saturate=0)")
    return t.fmt.to_fixed(codes)


def _stays_float(graph: Graph, name: str, readers: dict, fused: dict) -> bool:
    """Whether the codes ``name`` may stay float32: at most 16 bits (they and their
    difference with a zero point exact), read only, as the input, by layers that run fused."""
    t = graph.tensors[name]
    return (isinstance(t.fmt, IntFormat | FixedFormat) and t.fmt.bits <= 16
            and name not in graph.outputs and bool(readers.get(name))
            and all(r.inputs == [name] and r.outputs[0] in fused for r in readers[name]))


def _fingerprint(graph: Graph) -> tuple:
    """What a :class:`Reference` prepares its weights and fused layers from: each node's op,
    tensors and attribute objects (a graph changed by replacing any of them differs)."""
    return tuple((node.op, tuple(node.inputs), tuple(node.outputs),
                  tuple(map(id, node.attrs.values()))) for node in graph.nodes)


# The last few graphs' prepared references (each keeps its graph alive: few, not a leak).
_PREPARED: collections.OrderedDict[tuple[int, str], tuple[tuple, Reference]] = \
    collections.OrderedDict()
KEEP_PREPARED = 2


def prepared(graph: Graph, requant: str = "dyadic") -> Reference:
    """A :class:`Reference` of ``graph``, kept while the graph is unchanged and among the
    last :data:`KEEP_PREPARED` run, so a model run input by input prepares its weights once
    (a tenth of a millisecond a dense layer, as long as a small model's whole run)."""
    key = (id(graph), requant)
    printed = _fingerprint(graph)
    entry = _PREPARED.get(key)
    if entry is not None and entry[1].graph is graph and entry[0] == printed:
        _PREPARED.move_to_end(key)
        return entry[1]
    ref = Reference(graph, requant)
    _PREPARED[key] = (printed, ref)
    while len(_PREPARED) > KEEP_PREPARED:
        _PREPARED.popitem(last=False)
    return ref


class Reference:
    """Executes a lowered IR graph. ``run(inputs)`` maps input names to code arrays (float
    arrays for float inputs) and returns every output by name."""

    def __init__(self, graph: Graph, requant: str = "dyadic"):
        if requant not in REQUANT_MODES:
            raise QfabError(f"unknown requantization mode {requant!r}; "
                            f"choose one of {', '.join(REQUANT_MODES)}")
        self.graph = graph
        self.requant = requant
        # Weights prepared once per node (keyed by its output, which is unique).
        self._weights: dict[str, Matrix | list[Matrix]] = {}
        for node in graph.nodes:
            w = node.attrs.get("weight")
            if node.op == "dense":
                self._weights[node.outputs[0]] = Matrix(w)
            elif node.op == "conv":
                m, group = w.shape[0], node.attrs["group"]
                self._weights[node.outputs[0]] = [Matrix(wg.reshape(m // group, -1))
                                                  for wg in np.split(w, group)]
        # A conv or dense layer whose only reader is a requantizer (or a dense layer's, a
        # thresholder): the two run together where that is provably exact
        # (qfab.sim.reference_fused).
        readers: dict[str, list[Node]] = {}
        for node in graph.nodes:
            for name in node.inputs:
                readers.setdefault(name, []).append(node)
        fusable = {"conv": (["requant"],), "dense": (["requant"], ["threshold"])}
        self._fused = {n.outputs[0]: readers[n.outputs[0]][0] for n in graph.nodes
                       if n.op in fusable and n.outputs[0] not in graph.outputs
                       and [r.op for r in readers.get(n.outputs[0], [])] in fusable[n.op]}
        # A requantizer's only reader, a dequantizer, which may run with the layer too.
        self._dequantizers = {n.outputs[0]: readers[n.outputs[0]][0] for n in graph.nodes
                              if n.op == "requant" and n.outputs[0] not in graph.outputs
                              and [r.op for r in readers.get(n.outputs[0], [])] == ["dequantize"]}
        # A quantizer whose every reader is such a layer leaves its codes float32 (exact
        # integers of at most 16 bits, as the layer takes them) in a working array.
        self._float_codes = {n.outputs[0] for n in graph.nodes if n.op == "quantize"
                             and _stays_float(graph, n.outputs[0], readers, self._fused)}
        self.fused_prepared: dict = {}  # what sim.reference_fused prepares once a layer
        self._prepared_steps: dict[bool, list[tuple]] = {}
        self._product_work = max((_product_work(graph, n) for n in graph.nodes
                                  if n.op in ("dense", "conv")), default=0)
        # Multiply-adds an inference (every group of a conv): what a batch's run costs.
        self.macs = sum(_product_work(graph, n) * n.attrs.get("group", 1) for n in graph.nodes
                        if n.op in ("dense", "conv"))
        # Quantizers and dequantizers prepared once a node (keyed by its output).
        self._boundary: dict[str, boundary.Quantizer | boundary.Dequantizer] = {}

    def run(self, inputs: dict[str, np.ndarray], keep: bool = False) -> dict[str, np.ndarray]:
        env = dict(inputs)
        batch = max((len(x) for x in env.values() if getattr(x, "ndim", 0)), default=1)
        small = batch * self._product_work <= BLAS_ONE_THREAD_WORK
        with _NO_LIMIT if small else _OneBlasThread():
            for node, out, names, req, fused, method in self._steps(keep):
                if out in env:  # the requantizer (or dequantizer), run with its layer
                    continue
                ins = [env[i] for i in names]
                if req is not None:
                    y = fused(self, node, req, *ins)
                    if y is not None:  # outputs by name (a code only a fused reader read: None)
                        env.update(y)
                        continue
                    ins = [x.astype(np.int64) if i in self._float_codes else x
                           for i, x in zip(names, ins, strict=True)]
                y = getattr(self, method)(node, *ins)
                if len(node.outputs) == 1:
                    env[out] = y
                else:
                    env.update(zip(node.outputs, y, strict=True))
        return env if keep else {o: env[o] for o in self.graph.outputs}

    def _steps(self, keep: bool) -> list[tuple]:
        """Each node with what run() looks up for it, made once (a small model's run is
        mostly such lookups): (node, output, inputs, fused reader, its function, method).
        Keeping every tensor, nothing runs fused and every code is int64."""
        if keep not in self._prepared_steps:
            from qfab.sim.reference_fused import layer_requant, layer_threshold

            steps = []
            for node in self.graph.nodes:
                req = None if keep else self._fused.get(node.outputs[0])
                fused = None if req is None else (
                    layer_requant if req.op == "requant" else layer_threshold)
                method = "_" + node.op
                if not keep and node.outputs[0] in self._float_codes:
                    method = "_quantize_float"
                steps.append((node, node.outputs[0], tuple(node.inputs), req, fused, method))
            self._prepared_steps[keep] = steps
        return self._prepared_steps[keep]

    def _t(self, name: str) -> Tensor:
        return self.graph.tensors[name]

    # ---- boundary (float): qfab.sim.reference_boundary ----------------------------------
    def _boundary_step(self, kind: type, node: Node, tensor: str):
        """``node``'s prepared ``kind`` (Quantizer or Dequantizer) of ``tensor``."""
        step = self._boundary.get(node.outputs[0])
        if step is None or step.node is not node:
            step = self._boundary[node.outputs[0]] = kind(node, self._t(tensor))
        return step

    def _quantize(self, node: Node, x, work=None):
        return self._boundary_step(boundary.Quantizer, node, node.outputs[0])(x, work)

    def _quantize_float(self, node: Node, x):
        out = node.outputs[0]  # a working array a tensor, apart from the fused layers' own
        return self._quantize(node, x, lambda shape: _scratch("quantized " + out, shape,
                                                               np.float32))

    def _dynamic_quantize(self, node: Node, x):
        return boundary.dynamic_quantize(node, x)

    def _dequantize(self, node: Node, x, scale=None):
        return self._boundary_step(boundary.Dequantizer, node, node.inputs[0])(x, scale)

    # ---- integer ops -------------------------------------------------------------------
    def _conv(self, node: Node, x, zero_point=0):
        t = self._t(node.inputs[0])
        a = node.attrs
        v = _less_zero_point(fixed(t, x), a["x_zero_point"], zero_point)
        return conv(v, self._weights[node.outputs[0]], a["bias"], strides=a["strides"],
                    pads=a["pads"], dilations=a["dilations"], group=a["group"],
                    kernel=a["weight"].shape[2:])

    def _dense(self, node: Node, x, zero_point=0):
        t = self._t(node.inputs[0])
        a = node.attrs
        v = _less_zero_point(fixed(t, x), a["x_zero_point"], zero_point)
        acc = _exact_matmul(v, self._weights[node.outputs[0]])
        return acc if a["bias"] is None else acc + a["bias"]

    def _requant(self, node: Node, x):
        src, dst = self._t(node.inputs[0]), self._t(node.outputs[0])
        a = node.attrs
        v = fixed(src, x) - src.broadcast(a["in_zero_point"])
        if self.requant == "dyadic":
            mult, shift = src.broadcast(a["mult"]), src.broadcast(a["shift"])
            num = (v + src.broadcast(a["bias_int"])) * mult
            if isinstance(dst.fmt, MinifloatFormat):
                if a.get("relu"):  # ReLU before the quantizer: negatives become +0
                    num = np.maximum(num, 0)
                return dst.fmt.encode_fixed(num, -shift).astype(np.int64)
            y = shift_round(num, shift, a["rounding"])
        elif "scale_f32" in a and np.abs(v).max(initial=0) < 2**24:
            # onnxruntime's QLinearConv/QLinearMatMul: float32 accumulator times a float32
            # multiplier, rounded once more in float32 before the integer rounding.
            real = v.astype(np.float32) * src.broadcast(a["scale_f32"])
            y = round_real(real.astype(np.float64), a["rounding"])
        else:
            real = v.astype(np.float64) * src.broadcast(a["scale"]) + src.broadcast(a["offset"])
            if isinstance(dst.fmt, MinifloatFormat):
                if a.get("relu"):
                    real = np.maximum(real, 0.0) + 0.0  # and no -0: Relu then Q gives +0
                return dst.fmt.encode(real).astype(np.int64)
            y = round_real(real, a["rounding"])
        y = np.asarray(y, np.int64) + a["zero_point"]
        return np.clip(y, a["lo"], a["hi"], out=y)

    def _threshold(self, node: Node, x):
        src = self._t(node.inputs[0])
        a = node.attrs
        v = fixed(src, x)
        if _nonzero(a["in_zero_point"]):
            v = v - src.broadcast(a["in_zero_point"])
        thr = a["thresholds"]  # [C, T]
        if thr.shape[1] <= _FEW_THRESHOLDS:  # a pass a threshold, no [..., C, T] temporary
            count = np.zeros(np.shape(v), np.int64)
            for j in range(thr.shape[1]):
                count += v >= src.broadcast(thr[:, j])
        else:
            v = np.moveaxis(np.asarray(v), src.axis, -1)[..., None]
            count = np.moveaxis((v >= thr).sum(axis=-1), -1, src.axis).astype(np.int64)
        if a.get("step", 1) != 1:
            count *= a["step"]
        return count + a["base"]

    def _clamp(self, node: Node, x):
        return np.clip(x, node.attrs["lo"], node.attrs["hi"])

    def _maxpool(self, node: Node, x):
        a = node.attrs
        t = self._t(node.inputs[0])
        win = _windows(_pad(x, a["pads"], t.fmt.min), a["kernel"], a["strides"])
        return win.max(axis=(4, 5))

    def _upsample(self, node: Node, x):
        sh, sw = node.attrs["scale"]
        return np.repeat(np.repeat(x, sh, axis=2), sw, axis=3)

    def _sumpool(self, node: Node, x):
        a = node.attrs
        v = fixed(self._t(node.inputs[0]), x) - a["x_zero_point"]
        return _windows(_pad(v, a["pads"], 0), a["kernel"], a["strides"]).sum(axis=(4, 5))

    def _globalsum(self, node: Node, x):
        v = fixed(self._t(node.inputs[0]), x) - node.attrs["x_zero_point"]
        return v.sum(axis=(2, 3), keepdims=True)

    def _add(self, node: Node, x, y):
        a = node.attrs
        va = fixed(self._t(node.inputs[0]), x) - a["a_zero_point"]
        vb = fixed(self._t(node.inputs[1]), y) - a["b_zero_point"]
        if self.requant == "dyadic":
            out = shift_round(va * a["mult_a"] + vb * a["mult_b"], a["shift"], "half_even")
        else:
            out = np.round(va * a["scale_a"] + vb * a["scale_b"])
        return np.clip(np.asarray(out, np.int64) + a["zero_point"], a["lo"], a["hi"])

    def _reshape(self, node: Node, x):
        return x.reshape((x.shape[0],) + tuple(node.attrs["shape"][1:]))

    def _transpose(self, node: Node, x):
        return np.transpose(x, node.attrs["perm"])

    def _argmax(self, node: Node, x):
        """The index of the largest real value (the first one on ties, as ONNX's TopK)."""
        t = self._t(node.inputs[0])
        real = (np.asarray(fixed(t, x), np.float64) - t.broadcast(t.zero_point)) \
            * 2.0**t.fmt.lsb_exponent * t.broadcast(t.scale) + t.broadcast(t.bias)
        return np.argmax(real, axis=node.attrs["axis"], keepdims=True).astype(np.int64)

    def _softmax(self, node: Node, x):
        """Integer softmax over the last axis (compiler/frontend/activations.py): exp of the
        distance to the row's largest code from two tables, normalized by integer division."""
        a = node.attrs
        coarse, fine = np.asarray(a["table"], np.int64), np.asarray(a["fine"], np.int64)
        d = x.max(axis=-1, keepdims=True) - x
        j, k = d >> a["shift"], d & (fine.size - 1)
        e = np.where(j < coarse.size, coarse[np.minimum(j, coarse.size - 1)], 0)
        e = (e * fine[k] + 2**14) >> 15
        total = e.sum(axis=-1, keepdims=True)
        q = (2 * e * a["num"] + total) // (2 * total) + a["zero_point"]
        return np.clip(q, a["lo"], a["hi"]).astype(np.int64)

    def _lookup(self, node: Node, x):
        return np.asarray(node.attrs["table"], np.int64)[x - node.attrs["in_min"]]

    def _concat(self, node: Node, *xs):
        return np.concatenate(xs, axis=node.attrs["axis"])
