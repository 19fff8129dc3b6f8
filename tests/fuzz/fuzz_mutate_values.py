"""Mutations of the numbers in a seed: its scales, zero points and bit widths, its nodes'
attributes, and its input file.
"""

from __future__ import annotations

import numpy as np
import onnx
from fuzz_mutant import Context, Mutant, npz_bytes
from onnx import AttributeProto, helper, numpy_helper

F32_SUBNORMAL = 1e-40


# ---- scales, zero points and bit widths ---------------------------------------------------

# op -> input indices that are scales (a QONNX FloatQuant's max value too).
SCALE_INPUTS = {"QuantizeLinear": (1,), "DequantizeLinear": (1,), "QLinearConv": (1, 4, 6),
                "QLinearMatMul": (1, 4, 6), "QGemm": (1, 4, 7), "QLinearAdd": (1, 4, 6),
                "QLinearGlobalAveragePool": (1, 3), "QLinearAveragePool": (1, 3),
                "Quant": (1,), "BipolarQuant": (1,), "Trunc": (1,), "FloatQuant": (1, 5)}
ZERO_POINT_INPUTS = {"QuantizeLinear": (2,), "DequantizeLinear": (2,),
                     "QLinearConv": (2, 5, 7), "QLinearMatMul": (2, 5, 7), "QGemm": (2, 5, 8),
                     "QLinearAdd": (2, 5, 7), "QLinearGlobalAveragePool": (2, 4)}
BIT_WIDTH_INPUTS = {"Quant": (3,), "Trunc": (3, 4), "FloatQuant": (2, 3)}


def _const_inputs(c: Context, table) -> list[tuple[onnx.NodeProto, int, str]]:
    return [(n, i, n.input[i]) for n in c.graph.node for i in table.get(n.op_type, ())
            if i < len(n.input) and n.input[i] in c.inits]


def bad_scale(c: Context) -> Mutant | None:
    found = _const_inputs(c, SCALE_INPUTS)
    if not found:
        return None
    node, _, name = c.pick(found)
    s = numpy_helper.to_array(c.inits[name]).copy()
    invalid = {"zero": 0.0, "negative": -abs(float(s.reshape(-1)[0])), "nan": np.nan,
               "inf": np.inf, "-inf": -np.inf, "subnormal": F32_SUBNORMAL}
    extreme = {"tiny": 1e-30, "huge": 1e30, "max": 3e38, "x1e6": float(s.reshape(-1)[0]) * 1e6}
    kind = c.pick(list(invalid) + list(extreme))
    value = invalid.get(kind, extreme.get(kind))
    flat = s.reshape(-1)
    flat[int(c.rng.integers(flat.size)) if c.rng.random() < 0.5 else slice(None)] = value
    if s.dtype == np.float16 and kind == "subnormal":
        flat[:] = 1e-6  # float16's subnormal range
    c.set_init(name, s)
    return c.mutant(f"scale={kind}:{node.op_type}", kind in invalid)


def bad_zero_point(c: Context) -> Mutant | None:
    qonnx = [(n, 2, n.input[2]) for n in c.graph.node
             if n.op_type in ("Quant", "IntQuant") and len(n.input) > 2 and n.input[2] in c.inits]
    found = _const_inputs(c, ZERO_POINT_INPUTS) + qonnx
    if not found:
        return None
    node, _, name = c.pick(found)
    zp = numpy_helper.to_array(c.inits[name])
    if node.op_type in ("Quant", "IntQuant"):
        kind = c.pick(["half", "1e6", "-1e6", "nan", "inf", "in_range"])
        value = {"half": 0.5, "1e6": 1e6, "-1e6": -1e6, "nan": np.nan, "inf": np.inf,
                 "in_range": 1.0}[kind]
        c.set_init(name, np.full_like(zp, value))
        return c.mutant(f"zeropt={kind}:{node.op_type}", kind != "in_range")
    kind = c.pick(["float32", "int32", "shape", "in_range"])
    if kind == "float32":
        c.set_init(name, zp.astype(np.float32))
    elif kind == "int32":
        if zp.dtype == np.int32:
            return None
        c.set_init(name, zp.astype(np.int32))
    elif kind == "shape":
        c.set_init(name, np.zeros(3, zp.dtype) + zp.reshape(-1)[:1])
    else:
        info = np.iinfo(zp.dtype) if zp.dtype.kind in "iu" else None
        if info is None:
            return None
        c.set_init(name, np.full_like(zp, c.rng.integers(info.min, int(info.max) + 1)))
    # A per-tensor scale shared with another zero point can make a 3-vector legal nowhere;
    # an int32 zero point is legal only where the data is int32 (a bias).
    return c.mutant(f"zero_point={kind}:{node.op_type}", kind != "in_range")


def bad_bit_width(c: Context) -> Mutant | None:
    found = _const_inputs(c, BIT_WIDTH_INPUTS)
    if not found:
        return None
    node, i, name = c.pick(found)
    kind = c.pick(["2.5", "0", "-1", "nan", "inf", "1e9", "valid"])
    if kind == "0" and node.op_type == "FloatQuant" and i == 3:
        kind = "-1"  # zero mantissa bits is a valid minifloat
    value = float(c.rng.integers(2, 9)) if kind == "valid" else float(kind)
    c.set_init(name, np.full_like(numpy_helper.to_array(c.inits[name]), value))
    return c.mutant(f"bit_width={kind}:{node.op_type}[{i}]", kind != "valid")


# ---- attributes ------------------------------------------------------------------------------

_CONV = {"strides": [[0, 1], [-1, 1]], "dilations": [[0, 1], [1, -2]],
         "pads": [[-1, 0, 0, 0], [100, 100, 100, 100]], "group": [0, -1],
         "kernel_shape": [[0, 0], [5, 7]], "auto_pad": ["BOGUS"]}
_POOL = {"kernel_shape": [[0, 2], [-1, 1]], "strides": [[0, 1]], "pads": [[-1, 0, 0, 0],
         [9, 9, 9, 9]], "dilations": [[0, 1]], "ceil_mode": [2], "count_include_pad": [3],
         "auto_pad": ["BOGUS"]}
_GEMM = {"transA": [2], "transB": [5, -1], "alpha": [np.nan, np.inf], "beta": [np.nan]}
INVALID_ATTRIBUTES: dict[str, dict[str, list]] = {
    "Conv": _CONV, "ConvInteger": _CONV, "QLinearConv": _CONV,
    "MaxPool": _POOL, "AveragePool": _POOL, "QLinearAveragePool": _POOL,
    "Gemm": _GEMM, "QGemm": {k: v for k, v in _GEMM.items() if k != "beta"},  # it has none
    "Quant": {"signed": [7, -1, 0.5], "narrow": [2, 0.5], "rounding_mode": ["BOGUS"]},
    "Trunc": {"rounding_mode": ["BOGUS"]},
    "FloatQuant": {"saturation": [2], "has_subnormal": [3]},
    "MultiThreshold": {"out_scale": [np.nan, 0.0, np.inf], "out_bias": [np.nan]},
    "BatchNormalization": {"epsilon": [np.nan, np.inf]},
    "QuantizeLinear": {"saturate": [2]},
    "Flatten": {"axis": [99]}, "Concat": {"axis": [99]},
    "Transpose": {"perm": [[0, 0, 1, 1], [5, 4]]},
}


def _set_attribute(node: onnx.NodeProto, name: str, value) -> None:
    for a in list(node.attribute):
        if a.name == name:
            node.attribute.remove(a)
    node.attribute.append(helper.make_attribute(name, value))


def bad_attribute(c: Context) -> Mutant | None:
    node = c.pick(n for n in c.graph.node if n.op_type in INVALID_ATTRIBUTES)
    if node is None:
        return None
    name = c.pick(INVALID_ATTRIBUTES[node.op_type])
    value = c.pick(INVALID_ATTRIBUTES[node.op_type][name])
    if name == "kernel_shape" and node.op_type in ("Conv", "ConvInteger", "QLinearConv"):
        weight = c.inits.get(node.input[3 if node.op_type == "QLinearConv" else 1])
        if weight is None or list(weight.dims[2:]) == value:
            return None
    _set_attribute(node, name, value)
    return c.mutant(f"attribute {name}={value}:{node.op_type}", True)


def _int_attribute(c: Context) -> tuple[onnx.NodeProto, onnx.AttributeProto] | None:
    """A node and one of its INT or INTS attributes, picked at random (None: there is none)."""
    return c.pick((n, a) for n in c.graph.node for a in n.attribute
                  if a.type in (AttributeProto.INT, AttributeProto.INTS))


def odd_attribute(c: Context) -> Mutant | None:
    """Any integer attribute set to a small random value: valid or not, never a crash."""
    found = _int_attribute(c)
    if found is None:
        return None
    node, a = found
    if a.type == AttributeProto.INT:
        a.i = int(c.rng.integers(-2, 10))
        shown = a.i
    else:
        a.ints[:] = c.rng.integers(-1, 6, len(a.ints)).tolist()
        shown = list(a.ints)
    return c.mutant(f"odd_attribute {a.name}={shown}:{node.op_type}", False)


def wrong_attribute_type(c: Context) -> Mutant | None:
    found = _int_attribute(c)
    if found is None:
        return None
    node, a = found
    value = 0.5 if a.type == AttributeProto.INT else [0.5] * max(len(a.ints), 1)
    _set_attribute(node, a.name, value)
    return c.mutant(f"attribute_type {a.name}=float:{node.op_type}", True)


# ---- the input file -------------------------------------------------------------------------

def bad_input_file(c: Context) -> Mutant:
    """The seed model with an invalid IN file (only `reference` reads it)."""
    name, x = next(iter(c.seed.inputs.items()))
    kind = c.pick(["empty_batch", "nan", "inf", "strings", "complex", "bool", "rank",
                   "shape", "truncated", "wrong_key", "fraction", "range"])
    arrays = dict(c.seed.inputs)
    integer = x.dtype.kind in "iu"
    if kind == "empty_batch":
        arrays[name] = x[:0]
    elif kind in ("nan", "inf"):
        if integer:
            kind = "strings"
        else:
            y = x.copy()
            y.reshape(-1)[int(c.rng.integers(y.size))] = np.nan if kind == "nan" else -np.inf
            arrays[name] = y
    elif kind == "complex":
        arrays[name] = x.astype(np.complex64)
    elif kind == "bool":
        arrays[name] = x > 0
    elif kind == "rank":
        arrays[name] = x[0]
    elif kind == "shape":
        arrays[name] = np.concatenate([x, x], axis=-1)
    elif kind == "fraction":
        arrays[name] = x.astype(np.float32) + 0.25 if integer else x.astype(np.float64)
        if not integer:
            return Mutant(c.seed.name, "input float64", c.seed.model, npz_bytes(arrays), False)
    elif kind == "range":
        if not integer:
            arrays[name] = (x * 1e6).astype(np.float32)  # huge but finite: saturates
            return Mutant(c.seed.name, "input huge", c.seed.model, npz_bytes(arrays), False)
        arrays[name] = x.astype(np.int64) + 100000
    if kind == "strings":
        arrays[name] = np.full(x.shape, "pixel")
    data = npz_bytes(arrays)
    if kind == "truncated":
        data = data[: len(data) // 2]
    elif kind == "wrong_key":
        data = npz_bytes({"not_" + name: x, **{k: v for k, v in arrays.items() if k != name}})
    return Mutant(c.seed.name, f"input {kind}", c.seed.model, data, False, input_invalid=True)
