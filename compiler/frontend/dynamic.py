"""DynamicQuantizeLinear: a uint8 quantizer whose scale and zero point come from the data.

The scale depends on the data, so, like the quantization of a float graph input, it is a float
step at the input boundary: IR op ``dynamic_quantize``, computed in float32 exactly as ONNX
defines it, with three outputs (the uint8 codes, the float32 scale, the uint8 zero point; the
last two are scalars). The reference runs it; the hardware planner refuses it.

The op's ``_expanded`` function body (ReduceMin/ReduceMax, Min/Max with 0, Sub, Div, Clip,
Round, Cast, QuantizeLinear) is read too: each scalar op on the input becomes a ``Stat``
expression, and a QuantizeLinear whose scale and zero point are exactly the op's formulas
becomes the same IR node. (The body divides by zero on an all-zero input, where onnxruntime's
op gives scale 1 and zero point 0; qfab computes the op.)

After it, MatMulInteger/ConvInteger take the run-time zero point as a second input, and the
tail onnxruntime's quantize_dynamic writes (Cast of the int32 result, Mul by x_scale * w_scale)
becomes a ``dequantize`` with the scale tensor as second input and the constant as ``factor``.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto
from qfab.compiler.frontend.importer import handles
from qfab.compiler.frontend.values import Codes, Const, Float, FloatIn, Real, Scaled, Stat
from qfab.compiler.ir import Tensor
from qfab.numerics import IntFormat

from qfab.errors import QfabError

U8 = IntFormat(bits=8, signed=False)
SCALAR_OPS = ("Min", "Max", "Sub", "Div", "Clip", "Round", "Cast", "Identity")


def _float_input(imp, node) -> FloatIn:
    v = imp.value(node, 0)
    if not isinstance(v, FloatIn) or v.pre:
        raise imp.error(node, f"input {node.input[0]!r} must be a float graph input (the "
                              "scale is computed from the data at the input boundary)")
    return v


def emit(imp, name: str, x: FloatIn) -> tuple[str, str, str]:
    """The dynamic_quantize node of float input ``x`` (one per input): (codes, scale, zp)."""
    if x.tensor in imp.dynamic:
        return imp.dynamic[x.tensor]
    y = imp.new_tensor(name, x.shape, U8)
    scale = Tensor(imp.graph.fresh(name + "_scale"), (), None)
    zp = Tensor(imp.graph.fresh(name + "_zero_point"), (), U8)
    imp.graph.add_node("dynamic_quantize", name, [x.tensor], [y, scale, zp], qmin=0, qmax=255)
    imp.elem_types[y.name] = imp.elem_types[zp.name] = TensorProto.UINT8
    imp.dynamic[x.tensor] = (y.name, scale.name, zp.name)
    return imp.dynamic[x.tensor]


@handles("DynamicQuantizeLinear")
def DynamicQuantizeLinear(imp, node):
    y, scale, zp = emit(imp, node.name, _float_input(imp, node))
    return [Codes(y), Float(scale), Codes(zp)]


def formulas(x: str) -> tuple[tuple, tuple]:
    """DynamicQuantizeLinear's scale and zero point of input ``x``, as its body writes them."""
    lo = ("Min", ("ReduceMin", x), 0.0)
    hi = ("Max", ("ReduceMax", x), 0.0)
    scale = ("Div", ("Sub", hi, lo), 255.0)
    zp = ("Cast", ("Round", ("Clip", ("Sub", 0.0, ("Div", lo, scale)), 0.0, 255.0)),
          TensorProto.UINT8)
    return scale, zp


@handles("ReduceMin", "ReduceMax")
def Reduce(imp, node):
    x = _float_input(imp, node)
    axes = imp.const(node, 1, "axes") if len(node.input) > 1 else imp.attr(node, "axes")
    if axes is not None and sorted(int(a) % len(x.shape) for a in np.ravel(axes)) != list(
            range(len(x.shape))):
        raise imp.error(node, "only a reduction over every axis is supported (it gives "
                              "DynamicQuantizeLinear's range)")
    return [Stat((node.op_type, x.tensor))]


def scalar_op(imp, node) -> list:
    """An op reading a ``Stat``: a scalar op of the expression, or the body's quantizer."""
    op = node.op_type
    if op == "QuantizeLinear" and len(node.input) > 1:
        return [_quantize(imp, node)]
    if op not in SCALAR_OPS:
        raise imp.error(node, "reads a scalar computed from the data at run time; qfab reads "
                              "such scalars only as DynamicQuantizeLinear's function body "
                              f"computes them (ops {', '.join(SCALAR_OPS)})")
    args = []
    for i in range(len(node.input)):
        v = imp.value(node, i)
        if isinstance(v, Stat):
            args.append(v.expr)
        elif isinstance(v, Const) and np.size(v.value) == 1:
            args.append(float(np.float32(np.ravel(v.value)[0])))
        else:
            raise imp.error(node, f"input {node.input[i]!r} must be a scalar")
    if op == "Identity":
        return [Stat(args[0])]
    if op in ("Min", "Max"):
        args.sort(key=lambda a: isinstance(a, float))  # the expression first, then constants
    if op == "Cast":
        args.append(int(imp.attr(node, "to")))
    return [Stat((op, *args))]


def _quantize(imp, node) -> Codes:
    x = _float_input(imp, node)
    scale, zp = (imp.value(node, i) for i in (1, 2))
    if not (isinstance(scale, Stat) and isinstance(zp, Stat)
            and (scale.expr, zp.expr) == formulas(x.tensor)):
        raise imp.error(node, "its scale and zero point are computed from the data, but not "
                              "as DynamicQuantizeLinear computes them (the only form qfab reads)")
    return Codes(emit(imp, node.name, x)[0])


def stat_output(imp, v: Stat, name: str) -> Codes | Float:
    """A graph output that is the body's scale or zero point: the quantizer's output."""
    for x, (_, scale, zp) in imp.dynamic.items():
        s, z = formulas(x)
        if v.expr == s:
            return Float(scale)
        if v.expr == z:
            return Codes(zp)
    raise QfabError(f"graph output {name!r} is a scalar computed from the data that no "
                    "DynamicQuantizeLinear quantizer produces")


@handles("Cast")
def Cast(imp, node):
    """Integer codes of scale 1 (an int32 MatMulInteger/ConvInteger result) cast to float."""
    v = imp.value(node, 0)
    t = imp.tensor(v.tensor) if isinstance(v, Codes) else None
    if t is None or int(imp.attr(node, "to")) != TensorProto.FLOAT or np.any(t.scale != 1) or \
            np.any(t.zero_point) or np.any(t.bias):
        raise imp.error(node, "only integer results of scale 1 (MatMulInteger, ConvInteger) "
                              "cast to float are supported")
    return [Real(v.tensor)]


def scaled_op(imp, node) -> list:
    """Mul by a run-time scale: the scale times a constant, or a real times the scale."""
    a, b = imp.value(node, 0), imp.value(node, 1) if len(node.input) > 1 else None
    if isinstance(b, Float):
        a, b = b, a
    if node.op_type == "Mul" and isinstance(a, Float) and isinstance(b, Const):
        factor = (a.factor * np.asarray(b.value, np.float32)).astype(np.float32)
        return [Float(a.tensor, factor)]
    if node.op_type == "Mul" and isinstance(a, Float) and isinstance(b, Real) and \
            b.lo == -np.inf and b.hi == np.inf and np.all(imp.tensor(b.tensor).scale == 1):
        return [Scaled(b, a)]
    raise imp.error(node, "a scale computed at run time is supported only as quantize_dynamic "
                          "uses it: multiplied by a constant, then an integer result times it")


def dequantize_scaled(imp, v: Scaled, name: str) -> str:
    """The graph output float32(codes) * float32(scale * factor), as onnxruntime computes it."""
    t = imp.tensor(v.real.tensor)
    y = Tensor(name, t.shape, None)
    imp.graph.add_node("dequantize", name, [t.name, v.scale.tensor], [y], lo=-np.inf,
                       hi=np.inf, factor=v.scale.factor)
    return name
