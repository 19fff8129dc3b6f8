"""Sweeps of an already-quantized QONNX model in place (a Brevitas or QKeras export).

Its ``Quant`` nodes hold float weights and calibrated scales, so a point of a sweep changes
their formats directly, as qonnx's datatype changes do, instead of quantizing a float model
again. Each quantizer keeps the range it was trained for: the largest code's value stays,

    new scale = old scale * qmax(old bits) / qmax(new bits)      (qmax: 2^(b-1)-1 or 2^b-1)

rounded up to a power of two for fixed point; a minifloat becomes a ``FloatQuant`` whose top
value lands where the integer's did. A weight quantizer takes the spec of the MAC layer it
feeds, an activation quantizer that of the MAC layer that reads it (through pass-through ops).
A bias quantizer (Brevitas's int32 bias) is set to the scale of the products, the input
quantizer's scale times the weights'; where one side is a minifloat it is removed and the float
bias is folded into the accumulator as for a float model. ``BipolarQuant`` stays as it is.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper, numpy_helper
from qfab.cost_model.quantize import (
    MAC_OPS,
    QONNX_DOMAIN,
    QuantSpec,
    data_inputs,
    layer_specs,
    minifloat_params,
    named_nodes,
)

from qfab.errors import QfabError

QUANTIZED_OPS = ("Quant", "FloatQuant", "BipolarQuant", "Trunc", "MultiThreshold",
                 "QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul")


def is_quantized(model: onnx.ModelProto) -> bool:
    """Whether ``model`` already holds quantizers (then a sweep reformats them in place)."""
    return any(n.op_type in QUANTIZED_OPS for n in model.graph.node)


def _qmax(bits: float, signed: bool) -> float:
    return 2.0 ** (bits - 1) - 1 if signed else 2.0 ** bits - 1


def _const(inits: dict[str, onnx.TensorProto], name: str, node: onnx.NodeProto) -> np.ndarray:
    if name not in inits:
        raise QfabError(f"Quant node {node.name!r}: {name!r} is not a constant (in-place "
                        "sweeps need constant scales, zero points and bit widths)")
    return numpy_helper.to_array(inits[name]).astype(np.float64)


def reformat_qonnx(model: onnx.ModelProto, weights: QuantSpec | list[QuantSpec],
                   activations: QuantSpec | list[QuantSpec]) -> onnx.ModelProto:
    """A copy of the QONNX ``model`` with its Quant nodes in the given formats (one spec for
    every layer, or a list, one per MAC layer in graph order)."""
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul")
           for n in model.graph.node):
        raise QfabError("in-place sweeps change QONNX Quant nodes; this model is QDQ or "
                        "QOperator (sweep its float model instead)")
    model = named_nodes(model)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    macs, w_specs, a_specs = layer_specs(g, weights, activations, "sweep")
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in g.node:
        for t in n.input:
            readers.setdefault(t, []).append(n)

    def role(quant: onnx.NodeProto) -> tuple[str, QuantSpec | None]:
        """("weights", spec), ("bias", None) or ("activations", spec) of a Quant: the first
        MAC its output reaches through other ops, and at which input."""
        todo, seen = [quant.output[0]], set()
        while todo:
            t = todo.pop(0)
            for n in readers.get(t, []):
                if n.op_type in MAC_OPS:
                    slot = list(n.input).index(t)
                    if quant.input[0] not in inits:
                        return "activations", a_specs[macs.index(n)]
                    return (("weights", w_specs[macs.index(n)]) if slot == 1
                            else ("bias", None))
                if n.name not in seen:
                    seen.add(n.name)
                    todo += list(n.output)
        return "activations", a_specs[-1]

    nodes, new_inits, rename = [], [], {}
    biases = []
    for node in g.node:
        node_copy = onnx.NodeProto()
        node_copy.CopyFrom(node)
        node_copy.input[:] = [rename.get(x, x) for x in node_copy.input]
        if node.op_type != "Quant":
            nodes.append(node_copy)
            continue
        kind, spec = role(node)
        if kind == "bias":
            biases.append(node_copy)
            nodes.append(node_copy)
            continue
        nodes.append(_requantized(node_copy, spec, inits, new_inits))
    producer = {o: n for n in nodes for o in n.output}
    scales = {t.name: numpy_helper.to_array(t) for t in new_inits}
    for bias in biases:
        mac = next(m for m in macs if len(m.input) > 2 and m.input[2] == bias.output[0])
        quants = [_quantizer_before(mac.input[1], producer),
                  _quantizer_before(mac.input[0], producer)]
        if any(q is None or q.op_type != "Quant" for q in quants):
            nodes.remove(bias)
            rename[bias.output[0]] = bias.input[0]
            continue
        w_scale, a_scale = (scales.get(q.input[1], None) for q in quants)
        w_scale = w_scale if w_scale is not None else _const(inits, quants[0].input[1], mac)
        a_scale = a_scale if a_scale is not None else _const(inits, quants[1].input[1], mac)
        product = (np.asarray(a_scale, np.float64) * np.asarray(w_scale, np.float64)).reshape(-1)
        new_inits.append(numpy_helper.from_array(product.astype(np.float32),
                                                 f"{bias.name}_scale_reformat"))
        bias.input[1] = new_inits[-1].name
    for n in nodes:
        n.input[:] = [rename.get(x, x) for x in n.input]
    rename_outputs = {o.name for o in g.output} & set(rename)
    if rename_outputs:
        raise QfabError(f"a bias quantizer's output {sorted(rename_outputs)[0]!r} is a graph "
                        "output")
    graph = helper.make_graph(nodes, g.name, data_inputs(g), list(g.output),
                              list(g.initializer) + new_inits, value_info=list(g.value_info))
    out = helper.make_model(graph, opset_imports=list(model.opset_import),
                            producer_name=model.producer_name or "qfab-reformat")
    out.ir_version = model.ir_version
    return out


def _quantizer_before(tensor: str, producer: dict[str, onnx.NodeProto]
                      ) -> onnx.NodeProto | None:
    """The quantizer whose codes reach ``tensor`` through layout and pooling ops."""
    node = producer.get(tensor)
    while node is not None and node.op_type in ("MaxPool", "Flatten", "Reshape", "Transpose",
                                                 "Identity", "Relu"):
        node = producer.get(node.input[0])
    return node if node is not None and node.op_type in ("Quant", "FloatQuant") else None


def _requantized(node: onnx.NodeProto, spec: QuantSpec, inits: dict, new_inits: list
                 ) -> onnx.NodeProto:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    signed = bool(attrs.get("signed", 1))
    scale = _const(inits, node.input[1], node)
    zero_point = _const(inits, node.input[2], node)
    bits = float(_const(inits, node.input[3], node))
    if np.any(zero_point != 0):
        raise QfabError(f"Quant node {node.name!r}: in-place sweeps handle zero points of 0 "
                        "(symmetric quantizers) only")
    top = scale * _qmax(bits, signed)  # the largest code's value, kept by every format
    name = node.name

    def init(key: str, value) -> str:
        new_inits.append(numpy_helper.from_array(np.asarray(value, np.float32),
                                                 f"{name}_{key}_reformat"))
        return new_inits[-1].name

    if spec.kind == "minifloat":
        from qfab.cost_model.quantize import _minifloat_max

        e, m, special = minifloat_params(spec.minifloat)
        fmax = _minifloat_max(e, m, special)
        ins = [node.input[0], init("scale", top / fmax), init("exp", float(e)),
               init("man", float(m)), init("bias", float((1 << (e - 1)) - 1)),
               init("max", fmax)]
        return helper.make_node("FloatQuant", ins, list(node.output), name=name,
                                domain=QONNX_DOMAIN, has_inf=int(special == "ieee"),
                                has_nan=int(special != "none"), has_subnormal=1,
                                rounding_mode="ROUND", saturation=1)
    new_scale = top / _qmax(spec.bits, signed)
    if spec.kind == "fixed":
        new_scale = np.vectorize(lambda s: 2.0 ** math.ceil(math.log2(s)))(new_scale)
    node.input[1] = init("scale", new_scale)
    node.input[3] = init("bits", float(spec.bits))
    return node


def model_at(model: onnx.ModelProto, weights: QuantSpec | list[QuantSpec],
             activations: QuantSpec | list[QuantSpec], samples: np.ndarray,
             ptq: str = "gptq") -> onnx.ModelProto:
    """The model of one design point: a float model quantized post-training on ``samples``
    (by the quantizer ``ptq``, quantize.PTQ_METHODS), or a quantized QONNX model reformatted
    in place."""
    from qfab.cost_model.quantize import quantize_model

    if is_quantized(model):
        return reformat_qonnx(model, weights, activations)
    return quantize_model(model, weights, activations, samples, ptq)


def float_path(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """The float network a QONNX model's ``Quant`` and ``FloatQuant`` nodes approximate:
    each one bypassed. None when other quantizers (BipolarQuant, Trunc, MultiThreshold, QDQ)
    are part of its function."""
    g = model.graph
    if any(n.op_type in QUANTIZED_OPS and n.op_type not in ("Quant", "FloatQuant")
           for n in g.node):
        return None
    rename = {n.output[0]: n.input[0] for n in g.node if n.op_type in ("Quant", "FloatQuant")}

    def source(t: str) -> str:
        while t in rename:
            t = rename[t]
        return t

    nodes = []
    for n in g.node:
        if n.op_type in ("Quant", "FloatQuant"):
            continue
        copy = onnx.NodeProto()
        copy.CopyFrom(n)
        copy.input[:] = [source(x) for x in copy.input]
        nodes.append(copy)
    outputs = []
    for o in g.output:
        if o.name in rename:
            nodes.append(helper.make_node("Identity", [source(o.name)], [o.name]))
        outputs.append(o)
    graph = helper.make_graph(nodes, g.name + "_float", data_inputs(g), outputs,
                              list(g.initializer))
    opsets = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
    out = helper.make_model(graph, opset_imports=opsets)
    out.ir_version = model.ir_version
    return out
