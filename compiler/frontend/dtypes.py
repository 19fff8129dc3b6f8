"""ONNX element types <-> qfab number formats and NumPy arrays of codes."""

from __future__ import annotations

import ml_dtypes
import numpy as np
from onnx import TensorProto
from qfab.numerics import IntFormat, MinifloatFormat

_INT = {
    TensorProto.INT8: (8, True), TensorProto.UINT8: (8, False),
    TensorProto.INT16: (16, True), TensorProto.UINT16: (16, False),
    TensorProto.INT32: (32, True), TensorProto.INT4: (4, True), TensorProto.UINT4: (4, False),
}
for _name, _spec in (("INT2", (2, True)), ("UINT2", (2, False))):
    if hasattr(TensorProto, _name):
        _INT[getattr(TensorProto, _name)] = _spec

_FLOAT = {
    TensorProto.FLOAT8E4M3FN: (MinifloatFormat.E4M3FN, ml_dtypes.float8_e4m3fn),
    TensorProto.FLOAT8E5M2: (MinifloatFormat.E5M2, ml_dtypes.float8_e5m2),
    TensorProto.FLOAT8E4M3FNUZ: (MinifloatFormat(exp_bits=4, man_bits=3, bias=8, special="fnuz"),
                                 ml_dtypes.float8_e4m3fnuz),
    TensorProto.FLOAT8E5M2FNUZ: (MinifloatFormat(exp_bits=5, man_bits=2, bias=16, special="fnuz"),
                                 ml_dtypes.float8_e5m2fnuz),
    TensorProto.FLOAT4E2M1: (MinifloatFormat.E2M1FN, ml_dtypes.float4_e2m1fn),
}
FLOAT_TYPES = (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16)


def is_quantized_type(elem_type: int) -> bool:
    return elem_type in _INT or elem_type in _FLOAT


def format_of(elem_type: int):
    """The qfab format of an ONNX integer or low-precision float element type."""
    if elem_type in _INT:
        bits, signed = _INT[elem_type]
        return IntFormat(bits=bits, signed=signed)
    if elem_type in _FLOAT:
        return _FLOAT[elem_type][0]
    raise KeyError(elem_type)


def to_codes(array: np.ndarray, fmt) -> np.ndarray:
    """Integer codes (int64) of an array as ONNX/NumPy hold it."""
    array = np.asarray(array)
    if isinstance(fmt, MinifloatFormat):
        if array.dtype.itemsize == 1 and array.dtype.kind == "V" or array.dtype.name.startswith(
                "float8") or array.dtype.name.startswith("float4"):
            if array.dtype.name.startswith("float4"):
                return fmt.encode(array.astype(np.float64)).astype(np.int64)
            return array.view(np.uint8).astype(np.int64)
        if array.dtype.kind == "f":
            return fmt.encode(array.astype(np.float64)).astype(np.int64)
        return array.astype(np.int64)
    return array.astype(np.int64)


def from_codes(codes: np.ndarray, elem_type: int) -> np.ndarray:
    """Codes as the NumPy array ONNX would give for ``elem_type`` (float8 via ml_dtypes)."""
    if elem_type in _FLOAT:
        fmt, dtype = _FLOAT[elem_type]
        if np.dtype(dtype).itemsize == 1 and not np.dtype(dtype).name.startswith("float4"):
            return codes.astype(np.uint8).view(dtype)
        return fmt.decode(codes).astype(dtype)
    from onnx.helper import tensor_dtype_to_np_dtype

    return codes.astype(tensor_dtype_to_np_dtype(elem_type))
