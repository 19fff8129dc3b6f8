"""The Python API: what users' own regression tests call (DESIGN.md)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper

from qfab.compiler.frontend import dtypes
from qfab.compiler.frontend.importer import import_onnx, load_model
from qfab.compiler.frontend.validate import check_input_array
from qfab.compiler.ir import Graph
from qfab.compiler.passes import lower
from qfab.errors import QfabError
from qfab.numerics import IntFormat

ModelLike = str | os.PathLike | onnx.ModelProto | Graph


def lower_model(model: ModelLike, *, multiplier_bits: int = 16,
                input_format: str | None = None) -> Graph:
    """Import an ONNX model and run the lowering passes: the integer-only IR.
    ``input_format`` (``fixed<16,6>``, ``int8:0.05``, ``uint8``, ``E4M3``, ...) is the number
    format of a float graph input the model reads without quantizing it."""
    if isinstance(model, Graph):
        return model
    return lower(import_onnx(model, input_format), multiplier_bits=multiplier_bits)


def _input_codes(graph: Graph, name: str, array: np.ndarray) -> np.ndarray:
    t = graph.tensors[name]
    array = np.asarray(array)
    want = t.shape
    if array.shape[1:] != tuple(want[1:]) or array.ndim != len(want):
        raise QfabError(f"input {name!r}: shape {array.shape} does not fit the model's "
                        f"{('N',) + tuple(want[1:])}")
    check_input_array(name, array, t.fmt)
    if t.is_float:
        if array.dtype.kind not in "fiu":
            raise QfabError(f"input {name!r}: expected numbers, got dtype {array.dtype}")
        return array.astype(np.float32, copy=False)  # the reference only reads it
    return dtypes.to_codes(array, t.fmt)


def reference(model: ModelLike, inputs: dict[str, np.ndarray] | np.ndarray,
              requant: str = "dyadic", *, input_format: str | None = None, progress=None
              ) -> dict[str, np.ndarray]:
    """Run the integer-only reference. ``inputs`` maps graph input names to arrays (a single
    array is accepted for a one-input model); the batch dimension may be any size. Returns
    output name -> array: float32 where the model dequantizes, integer codes otherwise.
    A long run says so every few seconds: ``progress`` as in ``qfab.simulate``."""
    return _reference(model, inputs, requant, input_format, progress)


def _reference(model, inputs, requant: str, input_format, progress=None
               ) -> dict[str, np.ndarray]:
    from qfab.sim.reference import prepared

    graph = lower_model(model, input_format=input_format)
    if not isinstance(inputs, dict):
        if len(graph.inputs) != 1:
            raise QfabError(f"the model has {len(graph.inputs)} inputs; pass a dict by name")
        inputs = {graph.inputs[0]: inputs}
    missing = [n for n in graph.inputs if n not in inputs]
    if missing:
        raise QfabError(f"missing input {missing[0]!r} (model inputs: {graph.inputs})")
    feeds = {}
    for name in graph.inputs:
        feeds[name] = _input_codes(graph, name, inputs[name])
    batch = len(next(iter(feeds.values()))) if feeds else 0
    ref = prepared(graph, requant)
    if batch < TICKING_BATCH and batch * ref.macs < TICKING_WORK:
        return ref.run(feeds)  # milliseconds: not worth watching (nor the ticker's wake-ups)
    from qfab.progress import progress_to, ticking

    with progress_to(progress), ticking(f"running the integer reference on {batch} inferences"):
        return ref.run(feeds)


# The batch, or the multiply-adds of its conv and dense layers, from which qfab.reference
# watches its run for progress lines (2**24: milliseconds on the float paths, a second or
# two where products need Python ints).
TICKING_BATCH = 1024
TICKING_WORK = 1 << 24


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


def load_inputs(path: str | os.PathLike, graph: Graph) -> dict[str, np.ndarray]:
    """Read IN as DESIGN.md gives it: a .npy (one input), a .npz keyed by input name, or a
    folder of ONNX TensorProto files ``input_0.pb``, ... in graph-input order."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("input_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
        if len(files) != len(graph.inputs):
            raise QfabError(f"{path}: {len(files)} input_*.pb files for "
                            f"{len(graph.inputs)} model inputs {graph.inputs}")
        arrays = {}
        for name, f in zip(graph.inputs, files, strict=True):
            try:
                arrays[name] = onnx.numpy_helper.to_array(onnx.load_tensor(str(f)))
            except Exception as e:  # protobuf raises several types on corrupt input
                raise QfabError(f"{f}: not a readable ONNX TensorProto "
                                f"({type(e).__name__})") from None
        return arrays
    if not path.is_file():
        raise QfabError(f"input file not found: {path}")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as e:
        raise QfabError(f"{path}: not a readable .npy/.npz file ({type(e).__name__})") from None
    if isinstance(loaded, np.ndarray):
        if len(graph.inputs) != 1:
            raise QfabError(f"{path}: one array for a model with inputs {graph.inputs}; "
                            "give a .npz keyed by input name")
        return {graph.inputs[0]: loaded}
    with loaded:
        unknown = sorted(set(loaded.files) - set(graph.inputs))
        if unknown:
            raise QfabError(f"{path}: key {unknown[0]!r} is not a model input "
                            f"(inputs: {graph.inputs})")
        return {k: loaded[k] for k in loaded.files}


def savable_outputs(graph: Graph, model: onnx.ModelProto | None,
                    outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs in NumPy types a .npz keeps: float outputs as computed, integer outputs in
    their ONNX integer type, and types NumPy lacks as codes (float8/float4 as their uint8 bit
    patterns, int4/int2 as int8 values, uint4/uint2 as uint8)."""
    typed = output_arrays(graph, model, outputs)
    result = {}
    for name, arr in typed.items():
        if arr.dtype.isbuiltin == 1:  # NumPy's own type (ml_dtypes' E5M2 is kind "f" too)
            result[name] = arr
            continue
        fmt = graph.tensors[name].fmt
        codes = dtypes.to_codes(arr, fmt)
        signed = isinstance(fmt, IntFormat) and fmt.signed
        result[name] = codes.astype(np.int8 if signed else np.uint8)
    return result


def load(model: str | os.PathLike | onnx.ModelProto) -> onnx.ModelProto:
    return load_model(model)


__all__ = ["lower_model", "reference", "load_inputs", "savable_outputs", "Path"]


def estimate(design, board=None, *, progress=None):
    """Cost-model estimate of a compiled design (or an HwPlan) on ``board``, by default the
    board it was compiled for, else ``pynq-z2``: ``lut``, ``ff``, ``dsp``, ``bram``,
    ``cycles``, ``latency_cycles``, ``ii_cycles``, ``throughput``, ``fits``, ``stages``.
    The cycle model on a plan it has not run on says so every few seconds: ``progress`` as in
    ``qfab.simulate``."""
    from qfab.cost_model.estimate import estimate as run
    from qfab.progress import progress_to

    with progress_to(progress):
        return run(design, board if board is not None else getattr(design, "board", None))
