"""Mutants of the seed models and their inputs.

Each mutation knows whether what it makes is invalid by construction (``invalid``: a scale of
NaN, a stride of 0, an opset of 999, an empty batch, ...), so that exit status 0 on it is a
silent accept; other mutations (a flipped byte, a truncated file, a zero point moved within
its range) may or may not give a valid model, and only a crash counts against them.

The mutations of a seed's bytes and graph are here; those of its numbers (scales, zero points,
bit widths, attributes, the input file) are :mod:`fuzz_mutate_values`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import onnx
from fuzz_corpus import seeds
from fuzz_mutant import Context, Mutant, npz_bytes
from fuzz_mutate_values import (
    bad_attribute,
    bad_bit_width,
    bad_input_file,
    bad_scale,
    bad_zero_point,
    odd_attribute,
    wrong_attribute_type,
)
from onnx import helper

__all__ = ["Mutant", "mutants", "npz_bytes"]


# ---- the bytes -------------------------------------------------------------------------------

def truncate(c: Context) -> Mutant:
    cut = int(c.rng.integers(0, len(c.seed.model)))
    return c.mutant(f"truncate@{cut}", cut == 0, c.seed.model[:cut])


def byte_flip(c: Context) -> Mutant:
    data = bytearray(c.seed.model)
    spots = c.rng.integers(0, len(data), int(c.rng.integers(1, 5)))
    for i in spots:
        data[i] ^= int(c.rng.integers(1, 256))
    return c.mutant(f"byte_flip@{','.join(map(str, spots))}", False, bytes(data))


def name_flip(c: Context) -> Mutant | None:
    """A node name made invalid UTF-8 (protobuf decodes strings lazily)."""
    node = c.pick(n for n in c.graph.node if len(n.name) >= 3)
    if node is None:
        return None
    marker = "QFABZZ" + node.name[1:]
    node.name = marker
    data = c.model.SerializeToString().replace(marker.encode(), b"\xff\xfe" + marker[2:].encode())
    return c.mutant(f"name_flip:{node.op_type}", True, data)


# ---- the graph ------------------------------------------------------------------------------

def drop_node(c: Context) -> Mutant:
    i = int(c.rng.integers(len(c.graph.node)))
    node = c.graph.node[i]
    used = any(c.consumers(o) for o in node.output if o)
    del c.graph.node[i]
    return c.mutant(f"drop_node:{node.op_type}", used)


def drop_initializer(c: Context) -> Mutant | None:
    if not c.graph.initializer:
        return None
    i = int(c.rng.integers(len(c.graph.initializer)))
    name = c.graph.initializer[i].name
    listed = any(inp.name == name for inp in c.graph.input)
    del c.graph.initializer[i]
    return c.mutant("drop_initializer", c.consumers(name) > 0 and not listed)


def no_outputs(c: Context) -> Mutant:
    del c.graph.output[:]
    return c.mutant("no_outputs", True)


def swap_nodes(c: Context) -> Mutant | None:
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


def dangling_input(c: Context) -> Mutant:
    node = c.pick(n for n in c.graph.node if n.input)
    k = int(c.rng.integers(len(node.input)))
    node.input[k] = "qfab_fuzz_nowhere"
    return c.mutant(f"dangling_input:{node.op_type}", True)


# ---- versions and domains -------------------------------------------------------------------

def bad_opset(c: Context) -> Mutant:
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


def bad_domain(c: Context) -> Mutant:
    node = c.pick(c.graph.node)
    if node.domain:
        node.domain = c.pick(["", "com.example"])
    else:
        node.domain = c.pick(["com.example", "qonnx.custom_op.channels_last",
                              "com.microsoft.nchwc"])
    c.model.opset_import.append(helper.make_opsetid(node.domain, 1))
    return c.mutant(f"domain:{node.op_type}->{node.domain or 'standard'}", True)


# ---- shapes -----------------------------------------------------------------------------------

def bad_input_shape(c: Context) -> Mutant | None:
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


MUTATIONS: dict[str, Callable[[Context], Mutant | None]] = {
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
        m = mutation(Context(pool[int(rng.integers(len(pool)))], rng))
        if m is not None:
            made += 1
            yield m
