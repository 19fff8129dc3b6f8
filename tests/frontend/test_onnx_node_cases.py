"""Every official ONNX node case for the quantization ops, through frontend + reference.

The cases come from the onnx wheel's own generators at test time. Inputs other than the data
input (scales, zero points, weights) become initializers, since the IR needs constants. Outputs
are compared exactly as their ONNX element type (float8/float4 by code, int4 by value, float16
as float16). QLinearConv and QLinearMatMul requantize with a float scale, so they run with
``requant="onnx"`` (the float multiply onnxruntime does) and must match exactly; the other ops
have no requantization, so both modes must match exactly. The dyadic mode of QLinearConv and
QLinearMatMul is checked too, within 1 LSB.

A case outside the supported set is listed in UNSUPPORTED with its reason: it must still fail
with a one-line QfabError (it is reported as a skip with that reason), and a listed case that
starts to pass fails the test, so the table stays true.
"""

from __future__ import annotations

import numpy as np
import pytest
from frontend_harness import lowered, mismatch, node_case_model, node_cases, output_types

from qfab.api import reference
from qfab.errors import QfabError

OPS = ("QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
       "MatMulInteger", "DynamicQuantizeLinear")
FLOAT_REQUANT_OPS = ("QLinearConv", "QLinearMatMul")

UNSUPPORTED: dict[str, str] = {}
CASES = node_cases(OPS)
RESULTS: dict[str, str] = {}


def _check(model, feeds, expected, requant: str) -> list[str]:
    types = output_types(model)
    got = reference(lowered(model), feeds, requant=requant)
    problems = []
    for vi, exp in zip(model.graph.output, expected, strict=True):
        diff = mismatch(got[vi.name], exp, types[vi.name])
        if diff:
            problems.append(f"{vi.name} ({requant}): {diff}")
    return problems


@pytest.mark.parametrize("op,case", CASES, ids=[c.name for _, c in CASES])
def test_node_case(op, case, record_property):
    model, feeds, expected = node_case_model(case)
    if case.name in UNSUPPORTED:
        try:
            _check(model, feeds, expected, "onnx")
        except QfabError as e:
            assert "\n" not in str(e)
            RESULTS[case.name] = "unsupported"
            record_property("result", "unsupported")
            pytest.skip(f"unsupported: {UNSUPPORTED[case.name]} ({e})")
        pytest.fail(f"{case.name} is listed as unsupported but now imports and runs: "
                    "remove it from UNSUPPORTED")
    modes = ("onnx",) if op in FLOAT_REQUANT_OPS else ("onnx", "dyadic")
    record_property("requant", ",".join(modes))
    problems = [p for mode in modes for p in _check(model, feeds, expected, mode)]
    assert not problems, "; ".join(problems)
    RESULTS[case.name] = "passed"


@pytest.mark.parametrize("op,case", [(o, c) for o, c in CASES if o in FLOAT_REQUANT_OPS],
                         ids=[c.name for o, c in CASES if o in FLOAT_REQUANT_OPS])
def test_node_case_dyadic_within_one_lsb(op, case):
    model, feeds, expected = node_case_model(case)
    got = reference(lowered(model), feeds, requant="dyadic")
    for vi, exp in zip(model.graph.output, expected, strict=True):
        diff = np.abs(got[vi.name].astype(np.int64) - exp.astype(np.int64))
        assert diff.max() <= 1, f"{vi.name}: dyadic differs by {diff.max()} LSB"


def test_every_op_has_cases_and_the_table_is_current(record_property):
    ops = {op for op, _ in CASES}
    assert ops == set(OPS), f"no official cases found for {set(OPS) - ops}"
    names = {c.name for _, c in CASES}
    stale = set(UNSUPPORTED) - names
    assert not stale, f"UNSUPPORTED lists cases the onnx wheel no longer has: {sorted(stale)}"
    passed = len(names) - len(UNSUPPORTED)
    record_property("cases", len(names))
    record_property("passed", passed)
    record_property("unsupported", len(UNSUPPORTED))
    print(f"\nONNX node cases for {', '.join(OPS)}: {len(names)} cases, {passed} exact, "
          f"{len(UNSUPPORTED)} unsupported (listed with reasons)")
