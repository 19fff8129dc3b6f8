"""Post-training quantization of a float ONNX model into QONNX, for design-space sweeps.

Inserts a QONNX ``Quant`` (integers, fixed point) or ``FloatQuant`` (minifloats) on the
model input, on the weights of every Conv, Gemm and MatMul, on the output of every Relu and
on the inputs and output of every residual Add, each with one per-tensor scale calibrated on
sample inputs. The plain quantizer (``ptq="max"``):

- integers: ``max|x| / qmax`` (symmetric, narrow signed weights; unsigned after a Relu and on
  a non-negative input);
- fixed point: the same, with the scale rounded up to a power of two (``Qm.n``);
- minifloats: ``max|x| / fmt.max_value``, so the largest value lands on the format's top.

The default (``ptq="gptq"``, ptq.py) keeps the formats and the hardware and chooses better
numbers within them, for integers and fixed point: each activation's range is the one of
least quantization error on the calibration inputs; each layer's weights are rounded by
GPTQ (error fed forward to the weights not yet rounded) at the scale of least output error
on the layer's calibration inputs, and written on the grid; each bias is corrected for the
mean output shift of its weights' error. Minifloats keep the plain scales.

Biases stay float; qfab's frontend folds them into the integer accumulator. The last layer's
output is left float, so the model returns logits as the float model does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from qfab.cost_model.ptq import best_scale, int_scale, optimal_weights, output_shift, quantized

from qfab.errors import QfabError

QONNX_DOMAIN = "qonnx.custom_op.general"
MINIFLOATS = {  # name -> (exp_bits, man_bits, special)
    "E4M3": (4, 3, "fn"), "E5M2": (5, 2, "ieee"), "E3M2": (3, 2, "none"),
    "E2M3": (2, 3, "none"), "E2M1": (2, 1, "none"),
}
MAC_OPS = ("Conv", "Gemm", "MatMul")
PTQ_METHODS = {  # name -> how activations are clipped, weights rounded, biases corrected
    "gptq": {"clip": "mse", "rounding": "gptq", "bias_correction": True},
    "max": {"clip": "max", "rounding": "nearest", "bias_correction": False},
}


@dataclass(frozen=True)
class QuantSpec:
    """How one tensor class is quantized: ``kind`` "int", "fixed" or "minifloat"; ``bits``
    for int and fixed; ``minifloat`` a name of MINIFLOATS or "ExMy"."""

    kind: str
    bits: int = 8
    minifloat: str = ""

    def __post_init__(self):
        if self.kind not in ("int", "fixed", "minifloat"):
            raise ValueError(f"quantization kind must be int, fixed or minifloat, "
                             f"not {self.kind!r}")
        if self.kind != "minifloat" and not 2 <= self.bits <= 16:
            raise ValueError(f"bits must be 2..16, not {self.bits!r}")
        if self.kind == "minifloat":
            minifloat_params(self.minifloat)

    @property
    def label(self) -> str:
        return self.minifloat if self.kind == "minifloat" else f"{self.kind}{self.bits}"

    @property
    def width(self) -> int:
        """Bits of one code."""
        if self.kind == "minifloat":
            e, m, _ = minifloat_params(self.minifloat)
            return 1 + e + m
        return self.bits


def minifloat_params(name: str) -> tuple[int, int, str]:
    """(exp_bits, man_bits, special) of ``E4M3``-style names (an FN suffix is accepted)."""
    key = name.upper().removesuffix("FN")
    if key in MINIFLOATS:
        return MINIFLOATS[key]
    try:
        e, m = key[1:].split("M")
        return int(e), int(m), "none"
    except ValueError:
        raise ValueError(f"not a minifloat name: {name!r} (e.g. E4M3, E2M1)") from None


def _minifloat_max(e: int, m: int, special: str) -> float:
    from qfab.numerics import MinifloatFormat

    return float(MinifloatFormat(exp_bits=e, man_bits=m, special=special).max_value)


def _quant_node(name: str, x: str, out: str, spec: QuantSpec, amax: float, signed: bool,
                inits: list, scale: float | None = None) -> onnx.NodeProto:
    """A Quant (FloatQuant) node of range ``amax``, or of ``scale`` when given (int, fixed)."""
    amax = max(float(amax), 1e-8)
    if spec.kind == "minifloat":
        e, m, special = minifloat_params(spec.minifloat)
        top = _minifloat_max(e, m, special)
        scale = amax / top
        consts = {"scale": scale, "exp": float(e), "man": float(m),
                  "bias": float((1 << (e - 1)) - 1), "max": top}
        for key, value in consts.items():
            inits.append(numpy_helper.from_array(np.array(value, np.float32), f"{name}_{key}"))
        return helper.make_node(
            "FloatQuant", [x] + [f"{name}_{k}" for k in consts], [out], name=name,
            domain=QONNX_DOMAIN, has_inf=int(special == "ieee"),
            has_nan=int(special != "none"), has_subnormal=1, rounding_mode="ROUND",
            saturation=1)
    if scale is None:
        scale = int_scale(amax, spec.bits, signed, spec.kind == "fixed")
    for key, value in (("scale", scale), ("zp", 0.0), ("bits", float(spec.bits))):
        inits.append(numpy_helper.from_array(np.array(value, np.float32), f"{name}_{key}"))
    return helper.make_node(
        "Quant", [x, f"{name}_scale", f"{name}_zp", f"{name}_bits"], [out], name=name,
        domain=QONNX_DOMAIN, signed=int(signed), narrow=int(signed), rounding_mode="ROUND")


def fixed_batch(model: onnx.ModelProto, input_name: str) -> int | None:
    """The batch size a graph input is declared with (``None`` when it is symbolic)."""
    value = next(v for v in model.graph.input if v.name == input_name)
    dims = value.type.tensor_type.shape.dim
    return dims[0].dim_value or None if dims else None


def batches(samples: np.ndarray, size: int | None) -> list[np.ndarray]:
    """``samples`` cut into batches of a model's fixed batch ``size`` (one batch when the
    batch is symbolic); the last one is padded by repeating its first sample."""
    if not size:
        return [samples]
    out = []
    for start in range(0, len(samples), size):
        chunk = samples[start:start + size]
        if len(chunk) < size:
            chunk = np.concatenate([chunk, np.repeat(chunk[:1], size - len(chunk), axis=0)])
        out.append(chunk)
    return out


def _activation_values(model: onnx.ModelProto, in_name: str, names: list[str],
                       samples: np.ndarray) -> dict[str, np.ndarray]:
    """The float model's tensors ``names`` on ``samples``, the padding of a fixed batch cut
    off."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    inputs = data_inputs(probe.graph)
    del probe.graph.input[:]
    probe.graph.input.extend(inputs)
    known = {o.name for o in probe.graph.output}
    for n in names:
        if n not in known:
            probe.graph.output.append(helper.make_tensor_value_info(n, TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(probe.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    got: dict[str, list] = {n: [] for n in names}
    for batch in batches(samples.astype(np.float32), fixed_batch(model, in_name)):
        for n, v in zip(names, sess.run(names, {in_name: batch}), strict=True):
            got[n].append(v)
    return {n: np.concatenate(v)[:len(samples)] for n, v in got.items()}


_CALIBRATION_CACHE: dict[str, dict] = {}  # digest of model and samples -> values, scales


def _calibration(model: onnx.ModelProto, in_name: str, names: list[str],
                 samples: np.ndarray) -> dict:
    """The float tensors ``names`` on ``samples`` (``values``) and a memo of clipping
    searches on them (``scales``), kept for the last few models and sample sets (a search
    quantizes one model many times)."""
    import hashlib

    h = hashlib.sha1(model.SerializeToString())
    h.update(np.ascontiguousarray(samples, np.float32).tobytes())
    h.update(repr((in_name, names, samples.shape)).encode())
    key = h.hexdigest()
    if key not in _CALIBRATION_CACHE:
        while len(_CALIBRATION_CACHE) >= 4:
            _CALIBRATION_CACHE.pop(next(iter(_CALIBRATION_CACHE)))
        _CALIBRATION_CACHE[key] = {"values": _activation_values(model, in_name, names, samples),
                                   "scales": {}}
    return _CALIBRATION_CACHE[key]


def named_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose nodes all have names (onnx.helper leaves them empty): an
    unnamed node takes its first output's name, which is unique in the graph."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for node in copy.graph.node:
        node.name = node.name or node.output[0]
    return copy


def data_inputs(graph: onnx.GraphProto) -> list:
    """The graph inputs that are not initializers (older exporters list weights as inputs
    too, as ONNX IR < 4 required)."""
    inits = {t.name for t in graph.initializer}
    return [v for v in graph.input if v.name not in inits]


def layer_specs(g: onnx.GraphProto, weights: QuantSpec | list[QuantSpec],
                activations: QuantSpec | list[QuantSpec], verb: str):
    """The MAC nodes, and a weight and an activation spec for each (one spec for all, or
    one a layer)."""
    macs = [n for n in g.node if n.op_type in MAC_OPS]
    if not macs:
        raise QfabError(f"the model has no Conv, Gemm or MatMul to {verb}")
    w_specs = weights if isinstance(weights, list) else [weights] * len(macs)
    a_specs = activations if isinstance(activations, list) else [activations] * len(macs)
    if len(w_specs) != len(macs) or len(a_specs) != len(macs):
        raise QfabError(f"per-layer widths: the model has {len(macs)} MAC layers, got "
                        f"{len(w_specs)} weight and {len(a_specs)} activation specs")
    return macs, w_specs, a_specs


def quantize_model(model: onnx.ModelProto, weights: QuantSpec | list[QuantSpec],
                   activations: QuantSpec | list[QuantSpec],
                   samples: np.ndarray, ptq: str = "gptq", *, clip: str | None = None,
                   rounding: str | None = None,
                   bias_correction: bool | None = None) -> onnx.ModelProto:
    """A QONNX copy of float ``model``: weights and activations quantized as given (one spec
    for all layers, or a list, one per MAC layer in graph order), scales calibrated on
    ``samples`` (model inputs) by the quantizer ``ptq`` (a name of PTQ_METHODS). Its parts
    can be set one by one: activation ranges ``clip`` (``max``: the largest magnitude,
    ``mse``: least error), weights ``rounding`` (``nearest`` from max|w|, ``mse``: to
    nearest at the range of least error, ``gptq``) and ``bias_correction``."""
    if ptq not in PTQ_METHODS:
        raise QfabError(f"unknown post-training quantizer {ptq!r} "
                        f"(known: {', '.join(PTQ_METHODS)})")
    method = PTQ_METHODS[ptq]
    clip = method["clip"] if clip is None else clip
    rounding = method["rounding"] if rounding is None else rounding
    bias_correction = method["bias_correction"] if bias_correction is None else bias_correction
    if clip not in ("max", "mse") or rounding not in ("nearest", "mse", "gptq"):
        raise ValueError(f"clip must be max or mse, rounding nearest, mse or gptq, not "
                         f"{clip!r}, {rounding!r}")
    model = named_nodes(model)
    g = model.graph
    inputs = data_inputs(g)
    if len(inputs) != 1:
        raise QfabError(f"the quantizer handles one-input models (this one has "
                        f"{len(inputs)}: {', '.join(v.name for v in inputs)})")
    macs, w_specs, a_specs = layer_specs(g, weights, activations, "quantize")
    inits = {t.name: t for t in g.initializer}
    in_name = inputs[0].name
    quantize_after = [n.output[0] for n in g.node if n.op_type == "Relu"]
    # A residual Add sums two quantized tensors into a quantized one: its inputs and its
    # output get a signed Quant each, unless a Relu's (or the input's) already has one.
    signed_after = {t for n in g.node if n.op_type == "Add" and not set(n.input) & set(inits)
                    for t in [*n.input, n.output[0]]} - set(quantize_after) - {in_name}
    quantized_tensors = [in_name, *quantize_after, *sorted(signed_after)]
    mac_inputs = ([m.input[0] for m in macs] if bias_correction or rounding == "gptq"
                  else [])
    cal = _calibration(model, in_name, sorted({*quantized_tensors, *mac_inputs}), samples)
    values = cal["values"]

    def scale_of(tensor: str, spec: QuantSpec, signed: bool) -> float | None:
        # None: the Quant node's own scale from the largest magnitude.
        if clip == "max" or spec.kind == "minifloat":
            return None
        key = (tensor, spec.bits, signed, spec.kind == "fixed")
        if key not in cal["scales"]:
            cal["scales"][key] = best_scale(values[tensor], *key[1:])
        return cal["scales"][key]

    def activation_quant(tensor: str, out: str, signed: bool) -> onnx.NodeProto:
        spec = consumer_spec(tensor)
        return _quant_node(f"quant_{tensor}" if tensor != in_name else "quant_input", tensor,
                           out, spec, float(np.abs(values[tensor]).max()), signed, new_inits,
                           scale_of(tensor, spec, signed))
    layer_of = {}  # tensor -> index of the MAC layer that consumes it (activation spec)
    for i, mac in enumerate(macs):
        layer_of.setdefault(mac.input[0], i)

    def consumer_spec(tensor: str) -> QuantSpec:
        # An activation takes the format of the layer that reads it; follow pass-through ops.
        seen = [tensor]
        while seen:
            t = seen.pop()
            if t in layer_of:
                return a_specs[layer_of[t]]
            seen += [o for n in g.node if t in n.input and n.op_type not in MAC_OPS
                     for o in n.output]
        return a_specs[-1]

    new_inits: list = []
    nodes: list = []
    rename: dict[str, str] = {}
    non_negative = bool(samples.min() >= 0)
    q_in = in_name + "_q"
    nodes.append(activation_quant(in_name, q_in, not non_negative))
    rename[in_name] = q_in
    for node in g.node:
        node = _copy(node)
        node.input[:] = [rename.get(x, x) for x in node.input]
        if node.op_type in MAC_OPS:
            i = next(k for k, m in enumerate(macs) if m.name == node.name)
            w = node.input[1]
            if w not in inits:
                raise QfabError(f"node {node.name!r}: weights {w!r} are not an initializer "
                                "(the quantizer wants a float model, not a quantized one)")
            wf = numpy_helper.to_array(inits[w]).astype(np.float64)
            spec = w_specs[i]
            wq, scale = _weight_choice(macs[i], wf, spec, rounding, cal)
            source = w
            if wq is not None:  # weights on the quantizer's grid already
                source = f"{w}_rounded"
                new_inits.append(numpy_helper.from_array(wq.astype(np.float32), source))
            nodes.append(_quant_node(f"quant_{node.name}_w", source, w + "_q", spec,
                                     float(np.abs(wf).max()), True, new_inits, scale))
            node.input[1] = w + "_q"
            if bias_correction and spec.kind != "minifloat":
                if wq is None:
                    wq = quantized(wf, scale or int_scale(float(np.abs(wf).max()), spec.bits,
                                                          True, spec.kind == "fixed"),
                                   spec.bits)
                _correct_bias(node, macs[i], wq - wf, values, inits, new_inits)
        nodes.append(node)
        for out in node.output:
            if node.op_type == "Relu" or out in signed_after:
                q = out + "_q"
                nodes.append(activation_quant(out, q, node.op_type != "Relu"))
                rename[out] = q
    graph = helper.make_graph(nodes, g.name + "_qonnx", inputs, list(g.output),
                              list(g.initializer) + new_inits)
    opsets = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
    opsets.append(helper.make_opsetid(QONNX_DOMAIN, 1))
    return helper.make_model(graph, opset_imports=opsets, producer_name="qfab-ptq")


def _weight_choice(mac: onnx.NodeProto, wf: np.ndarray, spec: QuantSpec, rounding: str,
                   cal: dict) -> tuple[np.ndarray | None, float | None]:
    """A MAC layer's weights on the grid (None: the Quant node rounds the float weights to
    nearest) and their scale (None: from max|w|), as ``rounding`` chooses them."""
    if rounding == "nearest" or spec.kind == "minifloat":
        return None, None
    fixed = spec.kind == "fixed"
    key = ("weights", mac.name, spec.bits, fixed, rounding)
    if key not in cal["scales"]:
        got = None
        if rounding == "gptq":
            attrs = {a.name: helper.get_attribute_value(a) for a in mac.attribute}
            got = optimal_weights(mac.op_type, attrs, wf, cal["values"][mac.input[0]],
                                  spec.bits, fixed)
        cal["scales"][key] = got or (None, best_scale(wf, spec.bits, True, fixed))
    return cal["scales"][key]


def _correct_bias(node: onnx.NodeProto, mac: onnx.NodeProto, dw: np.ndarray, values: dict,
                  inits: dict, new_inits: list) -> None:
    """Point ``node``'s bias at a copy less the mean output shift its weights' error ``dw``
    causes on the float inputs (left as it is where ptq.output_shift does not apply)."""
    if len(node.input) < 3 or node.input[2] not in inits:
        return
    bias = numpy_helper.to_array(inits[node.input[2]]).astype(np.float64)
    attrs = {a.name: helper.get_attribute_value(a) for a in mac.attribute}
    shift = output_shift(mac.op_type, attrs, dw, values[mac.input[0]])
    if shift is None or shift.shape != bias.shape:
        return
    name = f"{node.input[2]}_corrected"
    new_inits.append(numpy_helper.from_array((bias - shift).astype(np.float32), name))
    node.input[2] = name


def _copy(node: onnx.NodeProto) -> onnx.NodeProto:
    new = onnx.NodeProto()
    new.CopyFrom(node)
    return new
