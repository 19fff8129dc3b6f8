"""The Python API: what users' own regression tests call (DESIGN.md)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx

from qfab.compiler.frontend import dtypes
from qfab.compiler.frontend.importer import import_onnx, load_model
from qfab.compiler.ir import Graph
from qfab.compiler.passes import lower
from qfab.errors import QfabError

ModelLike = str | os.PathLike | onnx.ModelProto | Graph


def lower_model(model: ModelLike, *, multiplier_bits: int = 16) -> Graph:
    """Import an ONNX model and run the lowering passes: the integer-only IR."""
    if isinstance(model, Graph):
        return model
    return lower(import_onnx(model), multiplier_bits=multiplier_bits)


def _input_codes(graph: Graph, name: str, array: np.ndarray) -> np.ndarray:
    t = graph.tensors[name]
    array = np.asarray(array)
    if t.is_float:
        if array.dtype.kind not in "fiu":
            raise QfabError(f"input {name!r}: expected numbers, got dtype {array.dtype}")
        return array.astype(np.float32)
    return dtypes.to_codes(array, t.fmt)


def reference(model: ModelLike, inputs: dict[str, np.ndarray] | np.ndarray,
              requant: str = "dyadic") -> dict[str, np.ndarray]:
    """Run the integer-only reference. ``inputs`` maps graph input names to arrays (a single
    array is accepted for a one-input model); the batch dimension may be any size. Returns
    output name -> array: float32 where the model dequantizes, integer codes otherwise."""
    from qfab.sim.reference import Reference

    graph = lower_model(model)
    if not isinstance(inputs, dict):
        if len(graph.inputs) != 1:
            raise QfabError(f"the model has {len(graph.inputs)} inputs; pass a dict by name")
        inputs = {graph.inputs[0]: inputs}
    missing = [n for n in graph.inputs if n not in inputs]
    if missing:
        raise QfabError(f"missing input {missing[0]!r} (model inputs: {graph.inputs})")
    feeds = {}
    for name in graph.inputs:
        arr = np.asarray(inputs[name])
        want = graph.tensors[name].shape
        if arr.shape[1:] != tuple(want[1:]) or arr.ndim != len(want):
            raise QfabError(f"input {name!r}: shape {arr.shape} does not fit the model's "
                            f"{('N',) + tuple(want[1:])}")
        feeds[name] = _input_codes(graph, name, arr)
    return Reference(graph, requant).run(feeds)


def output_arrays(graph: Graph, model: onnx.ModelProto | None,
                  outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs as ONNX would type them (float8 via ml_dtypes, int8 for int8, ...)."""
    if model is None:
        return outputs
    types = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
    result = {}
    for name, arr in outputs.items():
        et = types.get(name)
        t = graph.tensors[name]
        result[name] = arr if t.is_float or et is None else dtypes.from_codes(arr, et)
    return result


def load(model: str | os.PathLike | onnx.ModelProto) -> onnx.ModelProto:
    return load_model(model)


__all__ = ["lower_model", "reference", "Path"]
