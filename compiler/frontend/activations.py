"""Softmax, Sigmoid, Tanh, LeakyRelu and HardSigmoid: integer tables fixed at compile time.

At the model's end the plan leaves them to the SoC's control core (the firmware tail,
compiler/backend/tail.py); between layers an increasing table is the threshold block
(compiler/backend/mappings/threshold.py). The reference runs the same integer arithmetic, so
all agree bit for bit. As in hls4ml, the exponential is a lookup table.

- ``lookup`` (Sigmoid, Tanh, LeakyRelu, HardSigmoid): one output code per input code,
  ``table[x - in_min]``, each entry the float function of the input code's value rounded
  (half to even) to the output format: exact up to float64 rounding of the function. Inputs
  of at most 10 bits.
- ``softmax`` over the last axis of codes ``x`` with scale ``s``: ``d = max(x) - x >= 0``,
  split as ``d = (j << shift) + k``; ``e = (coarse[j] * fine[k] + 2**14) >> 15`` (0 past the
  coarse table's end), where ``coarse[j] = round(2**15 * exp(-s * (j << shift)))`` and
  ``fine[k] = round(2**15 * exp(-s * k))``: exp(-s * d) in units of 2**-15. Each output code
  is ``zero_point + floor(e * num / sum(e) + 1/2)``, clamped to the format, with ``num = 1 /
  output scale`` an integer (255 or 256 for onnxruntime's uint8 softmax, 2**15 when the model
  leaves the probabilities unquantized). ``shift`` is the least that keeps the coarse table
  within 1024 entries (0 for 8-bit inputs: one exact entry per code difference). Against
  the float definition a uint8 probability differs by at most one code, where it lands near
  a rounding tie (measured in tests/frontend/test_activations.py).

An unquantized accumulator feeding Softmax is first taken to fixed<16,6> (int16, scale
2**-10, saturating), hls4ml's default result type.
"""

from __future__ import annotations

import numpy as np
from qfab.compiler.frontend.importer import handles
from qfab.compiler.frontend.lowering import quantize_real
from qfab.compiler.frontend.values import Real
from qfab.compiler.ir import Acc
from qfab.numerics import IntFormat

EXP_ONE = 2**15  # the exp table's 1.0
MAX_EXP_TABLE = 1024
MAX_LOOKUP_BITS = 10  # 1024 entries: the table also goes to the firmware ROM
# op -> (its float definition of the values and the attributes, the attributes' defaults)
FUNCTIONS = {
    "Sigmoid": (lambda v, a: 1.0 / (1.0 + np.exp(-v)), {}),
    "Tanh": (lambda v, a: np.tanh(v), {}),
    "LeakyRelu": (lambda v, a: np.where(v < 0, a["alpha"] * v, v), {"alpha": 0.01}),
    "HardSigmoid": (lambda v, a: np.clip(a["alpha"] * v + a["beta"], 0.0, 1.0),
                    {"alpha": 0.2, "beta": 0.5}),
}
# Unquantized probabilities / function values: 16-bit codes in units of 2**-15 (LeakyRelu,
# whose values stay within its input's range: the input's format).
DEFAULT_OUT = {"Softmax": (IntFormat(16, False), 2.0**-15), "Sigmoid": (IntFormat(16, False),
               2.0**-15), "Tanh": (IntFormat(16, True), 2.0**-15),
               "HardSigmoid": (IntFormat(16, False), 2.0**-15)}


def exp_tables(scale: float, span: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(coarse, fine, shift) for code differences 0..span of codes of ``scale``."""
    shift = 0
    while True:
        j = np.arange(0, (span >> shift) + 1, dtype=np.float64)
        coarse = np.round(EXP_ONE * np.exp(-scale * j * 2.0**shift)).astype(np.int64)
        nonzero = int(np.count_nonzero(coarse))  # exp decreases: the zeros are at the end
        if nonzero <= MAX_EXP_TABLE:
            k = np.arange(2**shift, dtype=np.float64)
            fine = np.round(EXP_ONE * np.exp(-scale * k)).astype(np.int64)
            return coarse[:max(nonzero, 1)], fine, shift
        shift += 1


def lookup_table(fn: str, params: dict, in_t, fmt, scale: float,
                 zero_point: int) -> np.ndarray:
    codes = np.arange(in_t.fmt.min, in_t.fmt.max + 1, dtype=np.int64)
    real = (codes - float(np.asarray(in_t.zero_point))) * float(np.asarray(in_t.scale))
    value = FUNCTIONS[fn][0](real, params)
    out = np.round(value / scale) + zero_point  # np.round: half to even
    return np.clip(out, fmt.min, fmt.max).astype(np.int64)


def _input(imp, node, r: Real) -> str:
    """The codes the table reads: an integer tensor of one scale."""
    t = imp.tensor(r.tensor)
    if isinstance(t.fmt, Acc):
        if "Softmax" not in node.op_type:
            raise imp.error(node, "the input is an unquantized accumulator; quantize it "
                                  "(QuantizeLinear or Quant) before this op")
        return quantize_real(imp, node.name + "_in", r, IntFormat(16, True), 2.0**-10, 0)
    name = imp.materialize(r, node.name)
    t = imp.tensor(name)
    if not isinstance(t.fmt, IntFormat) or np.size(t.scale) > 1 or np.any(t.scale <= 0):
        raise imp.error(node, f"needs a per-tensor integer-quantized input, not {t.fmt}")
    return name


def softmax(imp, node, r: Real) -> Real:
    """The softmax node of ONNX node ``node`` (Softmax, QLinearSoftmax) on ``r``."""
    name = _input(imp, node, r)
    t = imp.tensor(name)
    # Before opset 13 Softmax's axis defaults to 1 and the input is flattened to 2-D there:
    # the same as the last axis when the dimensions between are 1.
    opset = next((o.version for o in imp.model.opset_import if o.domain in ("", "ai.onnx")),
                 13)
    axis = int(imp.attr(node, "axis", -1 if opset >= 13 or node.domain else 1))
    axis = axis % len(t.shape)
    if axis == 0 or any(d != 1 for d in t.shape[axis:-1]):  # axis 0: the batch
        raise imp.error(node, f"softmax over axis {axis} (of {len(t.shape)}) has no integer "
                              "lowering yet; over the last axis it has")
    coarse, fine, shift = exp_tables(float(t.scale), t.fmt.max - t.fmt.min)
    fmt, scale = DEFAULT_OUT["Softmax"]
    out = imp.new_tensor(node.name, t.shape, fmt, scale=np.float64(scale),
                         zero_point=np.zeros((), np.int64), axis=len(t.shape) - 1)
    imp.graph.add_node("softmax", node.name, [name], [out], table=coarse, fine=fine, shift=shift,
                       num=EXP_ONE, zero_point=0, lo=fmt.min, hi=fmt.max)
    return Real(out.name)


def lookup(imp, node, r: Real, fn: str) -> Real:
    """The lookup node of ``fn`` (Sigmoid, ...) for ONNX node ``node`` on ``r``."""
    name = _input(imp, node, r)
    t = imp.tensor(name)
    if t.fmt.bits > MAX_LOOKUP_BITS:
        raise imp.error(node, f"a {t.fmt.bits}-bit input needs a 2**{t.fmt.bits}-entry "
                              f"table; quantize it to at most {MAX_LOOKUP_BITS} bits first")
    params = {k: float(imp.attr(node, k, v)) for k, v in FUNCTIONS[fn][1].items()}
    fmt, scale = DEFAULT_OUT.get(fn, (t.fmt, float(t.scale)))
    zp = 0 if fn in DEFAULT_OUT else int(t.zero_point)
    out = imp.new_tensor(node.name, t.shape, fmt, scale=np.float64(scale),
                         zero_point=np.int64(zp), axis=t.axis)
    imp.graph.add_node("lookup", node.name, [name], [out], fn=fn, params=params,
                       table=lookup_table(fn, params, t, fmt, scale, zp),
                       in_min=t.fmt.min, lo=fmt.min, hi=fmt.max)
    return Real(out.name)


@handles("Softmax")
def Softmax(imp, node):
    return [softmax(imp, node, imp.real(node, 0))]


@handles(*FUNCTIONS)
def Elementwise(imp, node):
    return [lookup(imp, node, imp.real(node, 0), node.op_type)]


def retarget(imp, onnx_input: str, r: Real, fmt, scale, zero_point) -> str | None:
    """A quantizer right after a softmax or lookup: the table node computes those codes
    directly (one rounding, not two). None when the quantizer is not the node's only use."""
    if imp.uses[onnx_input] != 1:
        return None
    return quantized_output(imp, r, fmt, scale, zero_point)


# The largest 1 / output scale a softmax computes its codes with (a 16-bit probability's).
MAX_SOFTMAX_NUM = 1 << 16


def quantized_output(imp, r: Real, fmt, scale, zero_point) -> str | None:
    """The softmax or lookup node making ``r`` computing codes of (fmt, scale, zero_point)
    instead; None where it cannot (the caller requantizes)."""
    node = imp.graph.producer(r.tensor)
    if node is None or node.op not in ("softmax", "lookup") \
            or imp.graph.consumers(r.tensor) or r.lo > -np.inf or r.hi < np.inf \
            or not isinstance(fmt, IntFormat) or np.size(scale) > 1 or np.size(zero_point) > 1:
        return None
    scale, zp = float(np.asarray(scale).reshape(())), int(np.asarray(zero_point).reshape(()))
    t = imp.tensor(r.tensor)
    a = node.attrs
    if node.op == "softmax":
        num = round(1.0 / scale)
        if not 1 <= num <= MAX_SOFTMAX_NUM or abs(num * scale - 1.0) > 1e-6:
            # not 1/integer (or so small a scale that e * num leaves int64): keep the
            # 2**-15 codes and requantize them
            return None
        a.update(num=num, zero_point=zp, lo=fmt.min, hi=fmt.max)
    else:
        a.update(table=lookup_table(a["fn"], a["params"], imp.tensor(node.inputs[0]), fmt,
                                    scale, zp), lo=fmt.min, hi=fmt.max)
    t.fmt, t.scale, t.zero_point = fmt, np.float64(scale), np.int64(zp)
    return t.name
