"""Shared helpers for the frontend tests: import with the IR verifier between passes, run the
reference, and compare outputs as their ONNX element type."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import onnx
from onnx import numpy_helper
from qfab.compiler.frontend import dtypes
from qfab.compiler.frontend.importer import import_onnx
from qfab.compiler.ir import Graph, verify
from qfab.compiler.passes import lower

from qfab.api import reference


def lowered(model: onnx.ModelProto | str) -> Graph:
    """Import, verify the imported graph, then lower with the verifier after every pass."""
    graph = import_onnx(model)
    verify(graph)
    return lower(graph, check=True)


def run(model: onnx.ModelProto | str, feeds: dict[str, np.ndarray],
        requant: str) -> dict[str, np.ndarray]:
    return reference(lowered(model), feeds, requant=requant)


def as_array(value) -> np.ndarray:
    """A test-case value as NumPy holds it (ONNX cases store float8/int4 as TensorProtos)."""
    return numpy_helper.to_array(value) if isinstance(value, onnx.TensorProto) else np.asarray(
        value)


def output_types(model: onnx.ModelProto) -> dict[str, int]:
    return {o.name: o.type.tensor_type.elem_type for o in model.graph.output}


def typed(got: np.ndarray, elem_type: int) -> np.ndarray:
    """A reference output (integer codes, or float) as ONNX would type it."""
    if dtypes.is_quantized_type(elem_type):
        return dtypes.from_codes(np.asarray(got, np.int64), elem_type)
    return np.asarray(got)


def mismatch(got: np.ndarray, expected: np.ndarray, elem_type: int) -> str | None:
    """None when ``got`` equals ``expected`` exactly as ``elem_type``; else what differs."""
    got = typed(got, elem_type)
    if got.dtype != expected.dtype or got.shape != expected.shape:
        return f"{got.dtype}{got.shape} vs expected {expected.dtype}{expected.shape}"
    if dtypes.is_quantized_type(elem_type):
        fmt = dtypes.format_of(elem_type)
        a, b = dtypes.to_codes(got, fmt), dtypes.to_codes(expected, fmt)
        bad = a != b
    else:
        a, b = got.astype(np.float64), expected.astype(np.float64)
        bad = ~((a == b) & (np.signbit(a) == np.signbit(b)) | np.isnan(a) & np.isnan(b))
    if not bad.any():
        return None
    i = np.argwhere(bad)[0]
    return (f"{int(bad.sum())} of {bad.size} differ; first at {tuple(i)}: "
            f"{a[tuple(i)]} vs expected {b[tuple(i)]}")


@functools.cache
def _official_cases() -> tuple:
    """Every ONNX node case. ``collect_testcases`` imports the generator modules, which
    register cases as a side effect, so only its first call in a process returns them all."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unrelated generators warn about float overflow
        return tuple(collect_testcases())


def node_cases(ops: tuple[str, ...]) -> list[tuple[str, object]]:
    """(op type, case) for every official ONNX node case of ``ops``: a single-node case
    belongs to its node's op, an ``_expanded`` (function body) case to the case it expands."""
    cases = _official_cases()
    by_name = {c.name: c for c in cases}
    found = []
    for c in cases:
        base = c.name.split("_expanded")[0]
        op = by_name[base].model.graph.node[0].op_type if base in by_name else None
        if op in ops:
            found.append((op, c))
    return found


def node_case_model(case) -> tuple[onnx.ModelProto, dict[str, np.ndarray], list]:
    """The case's model with every input but the data input made an initializer (the IR
    needs constant scales, zero points and weights), its feeds and its expected outputs."""
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    (inputs, outputs), = case.data_sets
    g = model.graph
    data = g.input[0].name
    feeds = {data: as_array(inputs[0])}
    for vi, value in zip(list(g.input)[1:], inputs[1:], strict=True):
        if isinstance(value, onnx.TensorProto):
            init = onnx.TensorProto()
            init.CopyFrom(value)
            init.name = vi.name
        else:
            init = numpy_helper.from_array(np.asarray(value), vi.name)
        g.initializer.append(init)
    keep = [vi for vi in g.input if vi.name == data]
    del g.input[:]
    g.input.extend(keep)
    return model, feeds, [as_array(o) for o in outputs]
