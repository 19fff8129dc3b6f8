"""The model as a whole (text, versions, domains, onnx's checker, graph inputs), then each
node's checks."""

from __future__ import annotations

import numpy as np
import onnx
from google.protobuf.message import Message
from onnx import numpy_helper
from qfab.compiler.frontend.validate.node import CheckedNode
from qfab.compiler.frontend.validate.ops import NODE_CHECKS
from qfab.compiler.frontend.validate.types import check_zero_point_types, with_custom_opsets

from qfab.errors import QfabError

STANDARD_DOMAINS = ("", "ai.onnx")
# onnxruntime's oldest supported opset; older ones give several ops other meanings.
MIN_OPSET = 7
MAX_OPSET = onnx.defs.onnx_opset_version()
MIN_IR_VERSION = 3

QONNX_OPS = frozenset({"Quant", "IntQuant", "BipolarQuant", "Trunc", "FloatQuant",
                       "MultiThreshold", "XnorPopcountMatMul", "Im2Col", "MaxPoolNHWC",
                       "QuantAvgPool2d", "DebugMarker", "GenericPartition"})
# Ops qfab reads from each non-standard domain. A node of another domain, or of an op its
# domain lacks, is an error: it is never read as the standard op of the same name (the
# channels-last Conv of qonnx.custom_op.channels_last is not ONNX's Conv).
CUSTOM_DOMAIN_OPS: dict[str, frozenset[str]] = {
    "qonnx.custom_op.general": QONNX_OPS,
    "finn.custom_op.general": QONNX_OPS,  # FINN's name for the same ops
    "finn": QONNX_OPS,  # older FINN exports (qonnx reads it as its general domain)
    "onnx.brevitas": QONNX_OPS,  # older Brevitas exports (qonnx aliases it too)
    # Rewritten into standard ops before validation (channels_last.py); a node left here
    # was one the rewrite could not read.
    "qonnx.custom_op.channels_last": frozenset({"Conv", "MaxPool", "BatchNormalization"}),
    "com.microsoft": frozenset({
        "QLinearAdd", "QLinearMul", "QGemm", "QLinearConcat", "QLinearAveragePool",
        "QLinearGlobalAveragePool", "QLinearLeakyRelu", "QLinearSigmoid", "QLinearSoftmax",
        "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"}),
}

# Per-sample elements of a graph input, and the largest dimension: far above any model qfab
# can build, low enough that the planner's buffers fit in memory.
MAX_DIM = 1 << 16
MAX_INPUT_ELEMENTS = 1 << 26


def validate_model(model: onnx.ModelProto) -> None:
    """Raise ``QfabError`` (one line) when ``model`` is not a well-formed model qfab reads."""
    check_structure(model)
    graph = model.graph
    if not graph.output:
        raise QfabError("the graph has no outputs")
    consts = _constants(graph)
    for inp in graph.input:
        if inp.name not in consts:
            _check_input(inp)
    producers = {o: node for node in graph.node for o in node.output}
    for node in graph.node:
        check = NODE_CHECKS.get(node.op_type)
        if check is not None:
            check(CheckedNode(node, consts, producers))
    check_zero_point_types(model)
    _run_inference(model)


def check_structure(model: onnx.ModelProto) -> None:
    """The checks that do not depend on a node's layout (text, versions, domains, onnx's
    checker: nodes in topological order, ...): the importer runs them before it rewrites
    channels-last ops too, as that rewrite reorders nodes."""
    _check_text(model)
    if not model.HasField("graph") or not (model.graph.node or model.graph.output):
        raise QfabError("the model has no graph (an empty or truncated file?)")
    if not MIN_IR_VERSION <= model.ir_version <= onnx.IR_VERSION:
        raise QfabError(f"ir_version {model.ir_version} is outside {MIN_IR_VERSION}.."
                        f"{onnx.IR_VERSION} (what this onnx reads)")
    _check_opsets(model)
    _check_domains(model.graph)
    _run_checker(model)


# ---- the model as a whole ------------------------------------------------------------------

def _check_text(model: onnx.ModelProto) -> None:
    """Every string is valid UTF-8: protobuf hands an invalid one back as bytes (a byte
    flipped in a name), which would fail in whichever handler first read it."""
    def walk(msg) -> None:
        for field, value in msg.ListFields():
            if field.type == field.TYPE_STRING:
                values = [value] if isinstance(value, str | bytes) else value
                if any(not isinstance(v, str) for v in values):
                    raise QfabError(f"a {type(msg).__name__} field {field.name!r} is not valid "
                                    "UTF-8 (a corrupt file?)")
            elif field.type == field.TYPE_MESSAGE:
                for item in [value] if isinstance(value, Message) else value:
                    walk(item)

    walk(model)


def _check_opsets(model: onnx.ModelProto) -> None:
    versions = {o.domain: o.version for o in model.opset_import}
    standard = [versions[d] for d in STANDARD_DOMAINS if d in versions]
    if not standard:
        raise QfabError("the model imports no opset of the standard ONNX domain "
                        "(opset_import is missing)")
    if not MIN_OPSET <= standard[0] <= MAX_OPSET:
        raise QfabError(f"opset {standard[0]} of the standard ONNX domain is outside "
                        f"{MIN_OPSET}..{MAX_OPSET} (what qfab reads)")


def _check_domains(graph: onnx.GraphProto) -> None:
    for node in graph.node:
        if not node.op_type.isidentifier():  # a flipped byte: the error line must stay one
            raise QfabError(f"node {node.name!r}: op type {node.op_type!r} is not a name (a "
                            "corrupt file?)")
        if node.domain in STANDARD_DOMAINS:
            continue
        ops = CUSTOM_DOMAIN_OPS.get(node.domain)
        if ops is None:
            raise QfabError(f"{node.op_type} node {node.name!r}: domain {node.domain!r} is not "
                            f"one qfab reads ({', '.join(sorted(CUSTOM_DOMAIN_OPS))}, and the "
                            "standard domain)")
        if node.op_type not in ops:
            raise QfabError(f"{node.op_type} node {node.name!r}: domain {node.domain!r} has no "
                            f"op {node.op_type} qfab reads")


def _run_checker(model: onnx.ModelProto) -> None:
    """onnx's checker, told the custom domains qfab reads: real QONNX models use them
    without importing them (TFC_2W2A's onnx.brevitas)."""
    checked = with_custom_opsets(model)
    # A graph output without a shape is common (onnx.helper's shape=None) and harmless: the
    # importer computes every shape itself.
    for info in (*checked.graph.input, *checked.graph.output, *checked.graph.value_info):
        if info.type.HasField("tensor_type") and not info.type.tensor_type.HasField("shape"):
            info.type.tensor_type.shape.SetInParent()
    try:
        onnx.checker.check_model(checked)
    except onnx.checker.ValidationError as e:
        raise QfabError(f"not a valid ONNX model: {_first_line(e)}") from None


def _run_inference(model: onnx.ModelProto) -> None:
    """onnx's type and shape inference in strict mode: an op's input types against its
    opset's (int4 before opset 21), declared shapes against inferred ones. Last, so that
    qfab's own checks name what they find in their words first."""
    try:
        onnx.shape_inference.infer_shapes(with_custom_opsets(model), check_type=True,
                                          strict_mode=True)
    except onnx.shape_inference.InferenceError as e:
        raise QfabError(f"not a valid ONNX model: {_first_line(e)}") from None


def _first_line(e: Exception) -> str:
    """onnx's message on one line (it breaks lines inside a sentence), cut short."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Initializers and Constant node outputs, as arrays (a corrupt one is an error here)."""
    consts: dict[str, np.ndarray] = {}
    for init in graph.initializer:
        consts[init.name] = _array(init, f"initializer {init.name!r}")
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute:
            a = node.attribute[0]
            if a.type == onnx.AttributeProto.TENSOR:
                consts[node.output[0]] = _array(a.t, f"Constant node {node.name!r}")
    return consts


def _array(tensor: onnx.TensorProto, what: str) -> np.ndarray:
    if any(d < 0 for d in tensor.dims):
        raise QfabError(f"{what}: negative dimension in shape {list(tensor.dims)}")
    try:
        return numpy_helper.to_array(tensor)
    except Exception as e:  # a size that does not match the data, an unknown type, ...
        raise QfabError(f"{what}: unreadable tensor data ({type(e).__name__})") from None


def _check_input(inp: onnx.ValueInfoProto) -> None:
    tt = inp.type.tensor_type
    if not tt.HasField("shape") or not tt.shape.dim:
        raise QfabError(f"graph input {inp.name!r} has no shape (rank 0 or unknown); qfab "
                        "needs a batch dimension and static sizes")
    elements = 1
    for i, d in enumerate(tt.shape.dim):
        if not d.HasField("dim_value"):
            continue  # symbolic: the importer allows it for the batch only
        if not 1 <= d.dim_value <= MAX_DIM:
            raise QfabError(f"graph input {inp.name!r}: dimension {i} is {d.dim_value}; sizes "
                            f"must be in 1..{MAX_DIM}")
        elements *= d.dim_value if i else 1
    if elements > MAX_INPUT_ELEMENTS:
        raise QfabError(f"graph input {inp.name!r}: {elements} elements a sample, more than "
                        f"{MAX_INPUT_ELEMENTS}")


