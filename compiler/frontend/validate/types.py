"""Element types along the graph, and every zero point's type against its data's.

A zero point says how the codes it goes with are read (uint8 128 or int8 -128 are the same
bits), so one whose type differs from its data's is read wrongly, not refused, by whichever
handler meets it. Constants' types are in the file; a computed tensor's come from onnx's type
inference for the standard ops and from the rules below for the custom ops qfab reads (onnx
knows no com.microsoft or QONNX op, and stops at them).
"""

from __future__ import annotations

import onnx
from onnx import TensorProto

from qfab.errors import QfabError

# op -> the (data, zero point) input pairs it reads, and its output zero point's input.
_ZERO_POINTS: dict[str, tuple[tuple[tuple[int, int], ...], int | None]] = {
    "QuantizeLinear": ((), 2),
    "DequantizeLinear": (((0, 2),), None),
    "QLinearConv": (((0, 2), (3, 5)), 7),
    "QLinearMatMul": (((0, 2), (3, 5)), 7),
    "QGemm": (((0, 2), (3, 5)), 8),
    "QLinearAdd": (((0, 2), (3, 5)), 7),
    "QLinearMul": (((0, 2), (3, 5)), 7),
    "QLinearAveragePool": (((0, 2),), 4),
    "QLinearGlobalAveragePool": (((0, 2),), 4),
    "QLinearLeakyRelu": (((0, 2),), 4),
    "QLinearSigmoid": (((0, 2),), 4),
    "QLinearSoftmax": (((0, 2),), 4),
    "ConvInteger": (((0, 2), (1, 3)), None),
    "MatMulInteger": (((0, 2), (1, 3)), None),
    "MatMulIntegerToFloat": (((0, 4), (1, 5)), None),
    "DynamicQuantizeMatMul": (((1, 3),), None),
}
# com.microsoft ops whose inputs, output and every zero point share one type (their T).
_ONE_TYPE = {"QLinearAdd", "QLinearMul", "QLinearAveragePool", "QLinearGlobalAveragePool",
             "QLinearLeakyRelu", "QLinearSigmoid", "QLinearSoftmax", "QLinearConcat"}
# What QuantizeLinear quantizes (ONNX's T1; int32 since opset 21).
_QUANTIZABLE = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.DOUBLE,
                TensorProto.INT32}
_STANDARD_DOMAINS = ("", "ai.onnx")


def check_zero_point_types(model: onnx.ModelProto) -> None:
    """Raise ``QfabError`` when a zero point's type differs from its data's, or a
    QuantizeLinear reads codes."""
    types = element_types(model)
    for node in model.graph.node:
        for data, zp in _pairs(node):
            have = types.get(node.input[data]), types.get(node.input[zp])
            if None not in have and have[0] != have[1]:
                raise QfabError(f"{node.op_type} node {node.name!r}: zero point "
                                f"{node.input[zp]!r} has type {_name(have[1])}, but the data "
                                f"{node.input[data]!r} it reads is {_name(have[0])}")
        if node.op_type in _ONE_TYPE:
            _check_one_type(node, types)
        if node.op_type == "QuantizeLinear" and node.input:
            x = types.get(node.input[0])
            if x is not None and x not in _QUANTIZABLE:
                raise QfabError(f"QuantizeLinear node {node.name!r}: input {node.input[0]!r} "
                                f"is {_name(x)}, not a number type it quantizes")


def _check_one_type(node: onnx.NodeProto, types: dict[str, int]) -> None:
    out_zp = 1 if node.op_type == "QLinearConcat" else _ZERO_POINTS[node.op_type][1]
    data = [i for i, _ in _pairs(node)]
    if out_zp >= len(node.input) or not node.input[out_zp] or not data:
        return
    have = types.get(node.input[out_zp]), types.get(node.input[data[0]])
    if None not in have and have[0] != have[1]:
        raise QfabError(f"{node.op_type} node {node.name!r}: output zero point "
                        f"{node.input[out_zp]!r} has type {_name(have[0])}, but its input "
                        f"{node.input[data[0]]!r} is {_name(have[1])} (one type for both)")


def element_types(model: onnx.ModelProto) -> dict[str, int]:
    """The ONNX element type of every tensor whose type can be known, by name."""
    work = with_custom_opsets(model)
    graph = work.graph
    # A type written in the file can be stale (an exporter's, before an edit): infer afresh.
    del graph.value_info[:]
    for out in graph.output:
        out.type.tensor_type.elem_type = TensorProto.UNDEFINED
    custom = [n for n in graph.node if n.domain not in _STANDARD_DOMAINS]
    given = {t.name: t.data_type for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].HasField("t"):
            given[node.output[0]] = node.attribute[0].t.data_type
    given.update((i.name, i.type.tensor_type.elem_type) for i in graph.input
                 if i.name not in given and i.type.tensor_type.elem_type)
    types = dict(given)
    for _ in range(len(custom) + 1):
        try:
            inferred = onnx.shape_inference.infer_shapes(work)
        except Exception as e:  # onnx raises several types on a graph it cannot walk
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise QfabError(f"type inference failed: {first}") from None
        for info in (*inferred.graph.value_info, *inferred.graph.output):
            if info.type.tensor_type.elem_type:
                types.setdefault(info.name, info.type.tensor_type.elem_type)
        found = {}
        for node in custom:
            for name, t in zip(node.output, _custom_output_types(node, types), strict=False):
                if name and t and name not in types:
                    types[name] = found[name] = t
        if not found:
            break
        graph.value_info.extend(onnx.helper.make_tensor_value_info(name, t, None)
                                for name, t in found.items())
    return types


def with_custom_opsets(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` importing every domain its nodes use (onnx's checker and inference
    need that; real QONNX models leave their domains out)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    imported = {o.domain for o in copy.opset_import}
    used = {n.domain for n in copy.graph.node} - set(_STANDARD_DOMAINS)
    copy.opset_import.extend(onnx.helper.make_opsetid(d, 1) for d in sorted(used - imported))
    return copy


def _custom_output_types(node: onnx.NodeProto, types: dict[str, int]) -> list[int | None]:
    """The output element types of a custom-domain node, from its inputs' (None: unknown)."""
    def input_type(i: int) -> int | None:
        return types.get(node.input[i]) if i < len(node.input) and node.input[i] else None

    op = node.op_type
    if op == "QLinearConcat":
        return [input_type(1) or input_type(2)]
    if op == "QGemm" and input_type(7) is None:
        return [TensorProto.FLOAT]  # no output scale: QGemm gives floats
    if op in _ZERO_POINTS and _ZERO_POINTS[op][1] is not None:
        out_zp = _ZERO_POINTS[op][1]
        if op == "QuantizeLinear":
            return [input_type(out_zp) or TensorProto.UINT8]
        return [input_type(out_zp) or input_type(0)]
    if op == "DequantizeLinear":
        return [input_type(1)]
    if op == "MatMulIntegerToFloat":
        return [input_type(2)]
    # QONNX's ops and DynamicQuantizeMatMul: floats in, floats of the same type out.
    return [input_type(0)] * len(node.output)


def _pairs(node: onnx.NodeProto) -> list[tuple[int, int]]:
    """The (data, zero point) input pairs ``node`` has."""
    if node.op_type == "QLinearConcat":
        pairs = [(i, i + 2) for i in range(2, len(node.input) - 2, 3)]
    else:
        pairs = list(_ZERO_POINTS.get(node.op_type, ((), None))[0])
    present = range(len(node.input))
    return [(d, z) for d, z in pairs if d in present and z in present
            and node.input[d] and node.input[z]]


def _name(elem_type: int) -> str:
    return TensorProto.DataType.Name(elem_type).lower()
