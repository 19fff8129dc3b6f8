"""Quantizer nodes: QDQ, QOperator (com.microsoft and standard QLinear ops) and QONNX.

Scales finite, positive and normal; zero points of a quantized type and in range; per-axis
parameters that fit the data; bit widths integral and in range.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
from qfab.compiler.frontend.validate.node import CheckedNode
from qfab.compiler.frontend.validate.windows import check_window

MAX_OPSET = onnx.defs.onnx_opset_version()

# Zero point element types ONNX allows a quantizer's output (QuantizeLinear's T2 up to opset
# 25); DequantizeLinear also reads int32.
_Q_TYPES = {np.dtype(t) for t in ("int8", "uint8", "int16", "uint16")}


def _is_quantized_dtype(dtype: np.dtype, *, dequantize: bool) -> bool:
    from qfab.compiler.frontend import dtypes

    if dtype in _Q_TYPES or dtype == np.dtype("int32"):
        return dequantize or dtype != np.dtype("int32")
    try:
        return dtypes.is_quantized_type(onnx.helper.np_dtype_to_tensor_dtype(dtype))
    except (KeyError, ValueError, TypeError):
        return False


def _per_axis(n: CheckedNode, data: int, scale: np.ndarray | None, zp: np.ndarray | None,
              param_axis: bool = True) -> None:
    """Scale and zero point agree in shape; a 1-D scale runs along ``axis`` of the data."""
    if scale is not None and zp is not None and zp.size != 1 and zp.shape != scale.shape:
        raise n.fail(f"zero point shape {list(zp.shape)} differs from the scale's "
                     f"{list(scale.shape)}")
    x = n.const(data)
    if scale is None or scale.size == 1 or x is None or not param_axis:
        return
    block = n.int_attr("block_size", 0, 0)
    axis = n.int_attr("axis", 1, -x.ndim, x.ndim - 1) % max(x.ndim, 1)
    if scale.ndim == 1 and not block and scale.size != x.shape[axis]:
        raise n.fail(f"scale of {scale.size} values for axis {axis} of {list(x.shape)}")


def _zero_point(n: CheckedNode, i: int, *, dequantize: bool) -> np.ndarray | None:
    zp = n.const(i)
    if zp is None:
        return None
    if not _is_quantized_dtype(zp.dtype, dequantize=dequantize):
        raise n.fail(f"zero point {n.node.input[i]!r} has type {zp.dtype}, not an integer or "
                     "float8 quantized type")
    return zp


def _quantize_linear(n: CheckedNode) -> None:
    scale = n.scale(1)
    zp = _zero_point(n, 2, dequantize=False)
    n.flag("saturate", 1)
    _per_axis(n, 0, scale, zp)


def _dequantize_linear(n: CheckedNode) -> None:
    scale = n.scale(1)
    zp = _zero_point(n, 2, dequantize=True)
    _per_axis(n, 0, scale, zp)


def _qoperator(triples: tuple[tuple[int, int, int], ...], out: tuple[int, int] | None):
    """Checks for a QLinear op: each (data, scale, zero point) triple, and the output's
    (scale, zero point)."""
    def check(n: CheckedNode) -> None:
        for data, s, z in triples:
            if n.has_input(s):
                _per_axis(n, data, n.scale(s), _zero_point(n, z, dequantize=True),
                          param_axis=False)
        if out is not None and n.has_input(out[0]):
            n.scale(out[0], "output scale")
            _zero_point(n, out[1], dequantize=False)
        check_window(n)
        n.flag("transA", 0)
        n.flag("transB", 0)
        n.float_attr("alpha")
        n.flag("channels_last", 0)
    return check


def _qlinear_softmax(n: CheckedNode) -> None:
    _qoperator(((0, 1, 2),), (3, 4))(n)
    n.int_attr("opset", 13, 1, MAX_OPSET)
    n.int_attr("axis", -1, -64, 63)


def _qlinear_concat(n: CheckedNode) -> None:
    n.scale(0, "output scale")
    _zero_point(n, 1, dequantize=False)
    for i in range(2, len(n.node.input), 3):
        n.scale(i + 1)
        _zero_point(n, i + 2, dequantize=True)



# ---- QONNX ---------------------------------------------------------------------------------

_ROUNDING = ("ROUND", "HALF_EVEN", "FLOOR", "HALF_UP", "CEIL", "ROUND_TO_ZERO")


def _quant(n: CheckedNode) -> None:
    n.scale(1)
    bits = n.integral(3, "bit width", 1, 32)
    signed = n.flag("signed", 1)
    n.flag("narrow", 0)
    n.string_attr("rounding_mode", _ROUNDING, fold_case=True)  # as qonnx reads it
    zp = n.const(2)
    if zp is None or bits is None:
        return
    if zp.dtype.kind not in "fiu" or not np.all(np.isfinite(zp)) or np.any(zp != np.round(zp)):
        raise n.fail(f"zero point {n.node.input[2]!r} must hold integers")
    lo = -(1 << (bits - 1)) if signed else 0
    hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    if bits == 1 and signed:
        lo = hi = 0  # bipolar: +-scale, no zero point
    if np.any(zp < lo) or np.any(zp > hi):
        raise n.fail(f"zero point {n.node.input[2]!r} = {zp.reshape(-1)[0]:g}... lies outside "
                     f"the {bits}-bit {'signed' if signed else 'unsigned'} range {lo}..{hi}")


def _bipolar_quant(n: CheckedNode) -> None:
    n.scale(1)


def _trunc(n: CheckedNode) -> None:
    n.scale(1)
    n.finite(2, "zero point")
    in_bits = n.integral(3, "input bit width", 1, 32)
    if len(n.node.input) > 5:  # Trunc v2 (Brevitas 0.11 on): the output scale comes fourth
        n.scale(4, "output scale")
        out_bits = n.integral(5, "output bit width", 1, 32)
    else:
        out_bits = n.integral(4, "output bit width", 1, 32)
    if in_bits is not None and out_bits is not None and out_bits > in_bits:
        raise n.fail(f"output bit width {out_bits} exceeds the input bit width {in_bits}")
    n.string_attr("rounding_mode", _ROUNDING, fold_case=True)  # as qonnx reads it


def _float_quant(n: CheckedNode) -> None:
    n.scale(1)
    n.integral(2, "exponent bit width", 1, 8)
    n.integral(3, "mantissa bit width", 0, 23)
    n.integral(4, "exponent bias", -(1 << 8), 1 << 8)
    if n.has_input(5):
        n.scale(5, "max value")
    for name in ("has_subnormal", "has_inf", "has_nan", "saturation"):
        n.flag(name, 1)
    n.string_attr("rounding_mode", _ROUNDING, fold_case=True)  # as qonnx reads it


def _multithreshold(n: CheckedNode) -> None:
    thr = n.const(1)
    if thr is not None and thr.dtype.kind == "f" and np.any(np.isnan(thr)):
        raise n.fail(f"thresholds {n.node.input[1]!r} hold NaN")
    for name in ("out_scale", "out_bias"):
        n.float_attr(name)
    a = n.attrs.get("out_scale")
    if a is not None and (a.f == 0 or abs(a.f) < np.finfo(np.float32).smallest_normal):
        raise n.fail(f"attribute out_scale = {a.f} must be nonzero and normal")


CHECKS: dict[str, Callable[[CheckedNode], None]] = {
    "QuantizeLinear": _quantize_linear,
    "DequantizeLinear": _dequantize_linear,
    "QLinearConv": _qoperator(((0, 1, 2), (3, 4, 5)), (6, 7)),
    "QLinearMatMul": _qoperator(((0, 1, 2), (3, 4, 5)), (6, 7)),
    "QGemm": _qoperator(((0, 1, 2), (3, 4, 5)), (7, 8)),
    "QLinearAdd": _qoperator(((0, 1, 2), (3, 4, 5)), (6, 7)),
    "QLinearMul": _qoperator(((0, 1, 2), (3, 4, 5)), (6, 7)),
    "QLinearAveragePool": _qoperator(((0, 1, 2),), (3, 4)),
    "QLinearGlobalAveragePool": _qoperator(((0, 1, 2),), (3, 4)),
    "QLinearLeakyRelu": _qoperator(((0, 1, 2),), (3, 4)),
    "QLinearSigmoid": _qoperator(((0, 1, 2),), (3, 4)),
    "QLinearSoftmax": _qlinear_softmax,
    "QLinearConcat": _qlinear_concat,
    "Quant": _quant,
    "IntQuant": _quant,
    "BipolarQuant": _bipolar_quant,
    "Trunc": _trunc,
    "FloatQuant": _float_quant,
    "MultiThreshold": _multithreshold,
}
