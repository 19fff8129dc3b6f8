"""Mutants of the seed models and their inputs.

Each mutation knows whether what it makes is invalid by construction (``invalid``: a scale of
NaN, a stride of 0, an opset of 999, an empty batch, ...), so that exit status 0 on it is a
silent accept; other mutations (a flipped byte, a truncated file, a zero point moved within
its range) may or may not give a valid model, and only a crash counts against them.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import onnx
from fuzz_corpus import Seed, seeds
from onnx import AttributeProto, helper, numpy_helper

F32_SUBNORMAL = 1e-40


@dataclass(frozen=True)
class Mutant:
    seed: str
    kind: str
    model: bytes
    inputs: bytes  # the IN file for `qfab reference` (.npz bytes)
    invalid: bool  # the model is invalid: exit 0 from any command is a silent accept
    input_invalid: bool = False  # the input file is invalid: exit 0 from `reference` is one

    @property
    def label(self) -> str:
        return f"{self.seed}:{self.kind}"


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


class _Context:
    """One mutation's view of a seed: the parsed model and helpers to find things in it."""

    def __init__(self, seed: Seed, rng: np.random.Generator):
        self.seed = seed
        self.rng = rng
        self.model = onnx.load_from_string(seed.model)
        self.graph = self.model.graph
        self.inits = {t.name: t for t in self.graph.initializer}

    def pick(self, items):
        items = list(items)
        return items[self.rng.integers(len(items))] if items else None

    def mutant(self, kind: str, invalid: bool, model: bytes | None = None) -> Mutant:
        data = self.model.SerializeToString() if model is None else model
        return Mutant(self.seed.name, kind, data, npz_bytes(self.seed.inputs), invalid)

    def consumers(self, name: str) -> int:
        return sum(name in n.input for n in self.graph.node) + sum(
            o.name == name for o in self.graph.output)

    def set_init(self, name: str, array: np.ndarray) -> None:
        self.inits[name].CopyFrom(numpy_helper.from_array(array, name))


# ---- the bytes -------------------------------------------------------------------------------

def truncate(c: _Context) -> Mutant:
    cut = int(c.rng.integers(0, len(c.seed.model)))
    return c.mutant(f"truncate@{cut}", cut == 0, c.seed.model[:cut])


def byte_flip(c: _Context) -> Mutant:
    data = bytearray(c.seed.model)
    spots = c.rng.integers(0, len(data), int(c.rng.integers(1, 5)))
    for i in spots:
        data[i] ^= int(c.rng.integers(1, 256))
    return c.mutant(f"byte_flip@{','.join(map(str, spots))}", False, bytes(data))


def name_flip(c: _Context) -> Mutant | None:
    """A node name made invalid UTF-8 (protobuf decodes strings lazily)."""
    node = c.pick(n for n in c.graph.node if len(n.name) >= 3)
    if node is None:
        return None
    marker = "QFABZZ" + node.name[1:]
    node.name = marker
    data = c.model.SerializeToString().replace(marker.encode(), b"\xff\xfe" + marker[2:].encode())
    return c.mutant(f"name_flip:{node.op_type}", True, data)


# ---- the graph ------------------------------------------------------------------------------

def drop_node(c: _Context) -> Mutant:
    i = int(c.rng.integers(len(c.graph.node)))
    node = c.graph.node[i]
    used = any(c.consumers(o) for o in node.output if o)
    del c.graph.node[i]
    return c.mutant(f"drop_node:{node.op_type}", used)


def drop_initializer(c: _Context) -> Mutant | None:
    if not c.graph.initializer:
        return None
    i = int(c.rng.integers(len(c.graph.initializer)))
    name = c.graph.initializer[i].name
    listed = any(inp.name == name for inp in c.graph.input)
    del c.graph.initializer[i]
    return c.mutant("drop_initializer", c.consumers(name) > 0 and not listed)


def no_outputs(c: _Context) -> Mutant:
    del c.graph.output[:]
    return c.mutant("no_outputs", True)


def swap_nodes(c: _Context) -> Mutant | None:
    """Two nodes out of topological order, when the later one reads the earlier."""
    pairs = [(i, j) for j, b in enumerate(c.graph.node) for i, a in enumerate(c.graph.node[:j])
             if set(a.output) & set(b.input)]
    if not pairs:
        return None
    i, j = pairs[int(c.rng.integers(len(pairs)))]
    a, b = onnx.NodeProto(), onnx.NodeProto()
    a.CopyFrom(c.graph.node[i])
    b.CopyFrom(c.graph.node[j])
    c.graph.node[i].CopyFrom(b)
    c.graph.node[j].CopyFrom(a)
    return c.mutant("swap_nodes", True)


def dangling_input(c: _Context) -> Mutant:
    node = c.pick(n for n in c.graph.node if n.input)
    k = int(c.rng.integers(len(node.input)))
    node.input[k] = "qfab_fuzz_nowhere"
    return c.mutant(f"dangling_input:{node.op_type}", True)


# ---- versions and domains -------------------------------------------------------------------

def bad_opset(c: _Context) -> Mutant:
    choice = c.pick(["opset1", "opset999", "no_opset", "ir99", "ir1", "opset_valid"])
    std = [o for o in c.model.opset_import if o.domain in ("", "ai.onnx")]
    if choice == "opset1":
        std[0].version = 1
    elif choice == "opset999":
        std[0].version = 999
    elif choice == "no_opset":
        del c.model.opset_import[:]
    elif choice == "ir99":
        c.model.ir_version = 99
    elif choice == "ir1":
        c.model.ir_version = 1
    else:
        std[0].version = int(c.rng.integers(13, 22))
        return c.mutant(f"opset{std[0].version}", False)
    return c.mutant(choice, True)


def bad_domain(c: _Context) -> Mutant:
    node = c.pick(c.graph.node)
    if node.domain:
        node.domain = c.pick(["", "com.example"])
    else:
        node.domain = c.pick(["com.example", "qonnx.custom_op.channels_last",
                              "com.microsoft.nchwc"])
    c.model.opset_import.append(helper.make_opsetid(node.domain, 1))
    return c.mutant(f"domain:{node.op_type}->{node.domain or 'standard'}", True)


# ---- shapes -----------------------------------------------------------------------------------

def bad_input_shape(c: _Context) -> Mutant | None:
    inp = c.pick(i for i in c.graph.input if i.name not in c.inits)
    if inp is None:
        return None
    dims = inp.type.tensor_type.shape.dim
    choice = c.pick(["zero", "negative", "huge", "rank0", "other"])
    if choice == "rank0":
        del dims[:]
        return c.mutant("input_rank0", True)
    d = dims[int(c.rng.integers(len(dims)))]
    if choice == "other":
        d.dim_value = int(c.rng.integers(1, 40))
        return c.mutant(f"input_dim={d.dim_value}", False)
    d.dim_value = {"zero": 0, "negative": -3, "huge": 10**9}[choice]
    return c.mutant(f"input_dim={d.dim_value}", True)


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


def _const_inputs(c: _Context, table) -> list[tuple[onnx.NodeProto, int, str]]:
    return [(n, i, n.input[i]) for n in c.graph.node for i in table.get(n.op_type, ())
            if i < len(n.input) and n.input[i] in c.inits]


def bad_scale(c: _Context) -> Mutant | None:
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


def bad_zero_point(c: _Context) -> Mutant | None:
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


def bad_bit_width(c: _Context) -> Mutant | None:
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


def bad_attribute(c: _Context) -> Mutant | None:
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


def _int_attribute(c: _Context) -> tuple[onnx.NodeProto, onnx.AttributeProto] | None:
    """A node and one of its INT or INTS attributes, picked at random (None: there is none)."""
    return c.pick((n, a) for n in c.graph.node for a in n.attribute
                  if a.type in (AttributeProto.INT, AttributeProto.INTS))


def odd_attribute(c: _Context) -> Mutant | None:
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


def wrong_attribute_type(c: _Context) -> Mutant | None:
    found = _int_attribute(c)
    if found is None:
        return None
    node, a = found
    value = 0.5 if a.type == AttributeProto.INT else [0.5] * max(len(a.ints), 1)
    _set_attribute(node, a.name, value)
    return c.mutant(f"attribute_type {a.name}=float:{node.op_type}", True)


# ---- the input file -------------------------------------------------------------------------

def bad_input_file(c: _Context) -> Mutant:
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


MUTATIONS: dict[str, Callable[[_Context], Mutant | None]] = {
    "truncate": truncate, "byte_flip": byte_flip, "name_flip": name_flip,
    "drop_node": drop_node, "drop_initializer": drop_initializer, "no_outputs": no_outputs,
    "swap_nodes": swap_nodes, "dangling_input": dangling_input, "bad_opset": bad_opset,
    "bad_domain": bad_domain, "bad_input_shape": bad_input_shape, "bad_scale": bad_scale,
    "bad_zero_point": bad_zero_point, "bad_bit_width": bad_bit_width,
    "bad_attribute": bad_attribute, "odd_attribute": odd_attribute,
    "wrong_attribute_type": wrong_attribute_type, "bad_input_file": bad_input_file,
}
# Semantic mutations carry the checks; byte-level ones find what nobody thought of.
WEIGHTS = {"truncate": 2, "byte_flip": 4, "bad_scale": 4, "bad_zero_point": 3,
           "bad_bit_width": 2, "bad_attribute": 5, "odd_attribute": 3, "bad_input_file": 3}


def mutants(n: int, seed: int, names: list[str] | None = None) -> Iterator[Mutant]:
    """``n`` mutants drawn reproducibly from ``seed``."""
    rng = np.random.default_rng(seed)
    pool = [s for s in seeds() if names is None or s.name in names]
    kinds = list(MUTATIONS)
    weights = np.array([WEIGHTS.get(k, 1) for k in kinds], np.float64)
    made = 0
    while made < n:
        mutation = MUTATIONS[kinds[rng.choice(len(kinds), p=weights / weights.sum())]]
        m = mutation(_Context(pool[int(rng.integers(len(pool)))], rng))
        if m is not None:
            made += 1
            yield m
