"""Quantized ONNX -> integer IR, by abstract interpretation of the ONNX graph.

Each ONNX node is handled by one function (see qdq.py, qonnx.py, float_ops.py, layout_ops.py),
named after the op and registered with ``@handles``. Constant subgraphs (shape arithmetic,
weight quantization) are folded as they are met.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from qfab.compiler.frontend import dtypes
from qfab.compiler.frontend.values import (
    Codes,
    Const,
    Float,
    FloatIn,
    Real,
    Scaled,
    Stat,
    Value,
)
from qfab.compiler.ir import Acc, Graph, Tensor, unsupported

from qfab.errors import QfabError

Handler = Callable[["Importer", onnx.NodeProto], list[Value]]
HANDLERS: dict[str, Handler] = {}
CONST_FOLDABLE = {"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Reshape", "Cast", "Pow",
                  "Sqrt", "Div", "Mul", "Add", "Sub", "Neg", "Transpose", "Flatten", "Identity",
                  "ConstantOfShape", "Slice", "Range", "Expand", "Equal", "Where", "Reciprocal",
                  # Weight quantization written as ops (QCDQ exports): folded to typed codes.
                  "QuantizeLinear", "Clip"}
LAYOUT_OPS = {"Transpose", "Reshape", "Flatten", "Identity", "Squeeze", "Unsqueeze"}


def handles(*ops: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for op in ops:
            HANDLERS[op] = fn
        return fn

    return register


def load_model(model: str | os.PathLike | onnx.ModelProto) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    path = Path(model)
    if not path.is_file():
        raise QfabError(f"model file not found: {path}")
    try:
        return onnx.load(str(path))
    except Exception as e:  # protobuf raises several types on corrupt input
        raise QfabError(f"{path}: not a readable ONNX model ({type(e).__name__})") from None


class Importer:
    def __init__(self, model: onnx.ModelProto, input_format=None):
        self.model = onnx.ModelProto()
        self.model.CopyFrom(model)
        for node in self.model.graph.node:
            # Messages and IR node names need a name; an output name is unique in the graph.
            node.name = node.name or node.output[0]
        self.graph = Graph(name=model.graph.name or "model")
        self.values: dict[str, Value] = {}
        self.elem_types: dict[str, int] = {}
        # Float input -> (codes, scale, zero point) of its dynamic quantizer (dynamic.py).
        self.dynamic: dict[str, tuple[str, str, str]] = {}
        # Float graph inputs FINN annotates as integers (finn.py): name -> codes format.
        self.input_types: dict[str, tuple] = {}
        # The format a float input no quantizer reads is taken as (input_format.py), and the
        # quantize node made for each input (with its float pre-processing).
        self.input_format = input_format
        self.input_quantizers: dict[tuple[str, str], str] = {}

    # ---- helpers for handlers ------------------------------------------------------------
    def attr(self, node: onnx.NodeProto, name: str, default=None):
        for a in node.attribute:
            if a.name == name:
                v = onnx.helper.get_attribute_value(a)
                return v.decode() if isinstance(v, bytes) else v
        return default

    def value(self, node: onnx.NodeProto, i: int) -> Value | None:
        if i >= len(node.input) or not node.input[i]:
            return None
        return self.values[node.input[i]]

    def const(self, node: onnx.NodeProto, i: int, what: str) -> np.ndarray | None:
        v = self.value(node, i)
        if v is None:
            return None
        if not isinstance(v, Const):
            raise QfabError(f"{node.op_type} node {node.name!r}: {what} "
                            f"({node.input[i]!r}) must be a constant")
        return v.value

    def real(self, node: onnx.NodeProto, i: int) -> Real:
        v = self.value(node, i)
        if isinstance(v, Real):
            return v
        if isinstance(v, FloatIn) and v.tensor in self.input_types:
            from qfab.compiler.frontend.finn import annotated_real

            return annotated_real(self, node, v)
        if isinstance(v, FloatIn) and self.input_format is not None:
            from qfab.compiler.frontend.input_format import input_real

            return input_real(self, v)
        kind = "float (not quantized)" if isinstance(v, FloatIn | Const) else "raw codes"
        hint = (", or give the graph input's number format with --input-format (hls4ml's "
                "default: fixed<16,6>)" if isinstance(v, FloatIn) else "")
        raise QfabError(f"{node.op_type} node {node.name!r}: input {node.input[i]!r} is {kind}; "
                        f"qfab needs it quantized (QuantizeLinear/DequantizeLinear or Quant){hint}")

    def tensor(self, name: str) -> Tensor:
        return self.graph.tensors[name]

    def new_tensor(self, base: str, shape, fmt, **meta) -> Tensor:
        return Tensor(self.graph.fresh(base), tuple(int(d) for d in shape), fmt, **meta)

    def error(self, node: onnx.NodeProto, message: str) -> QfabError:
        return QfabError(f"{node.op_type} node {node.name!r}: {message}")

    def materialize(self, r: Real, node_name: str) -> str:
        """The IR tensor for ``r`` with its pending clamp applied (a clamp node if needed)."""
        t = self.tensor(r.tensor)
        if r.lo == -np.inf and r.hi == np.inf:
            return r.tensor
        if isinstance(t.fmt, Acc) or np.ndim(t.scale) or np.any(t.scale <= 0):
            raise QfabError(f"node {node_name!r}: Relu/Clip on this tensor must be followed "
                            "by a quantizer")
        lo_code = -np.inf if r.lo == -np.inf else np.ceil(r.lo / t.scale + t.zero_point)
        hi_code = np.inf if r.hi == np.inf else np.floor(r.hi / t.scale + t.zero_point)
        out = self.new_tensor(r.tensor + "_clamp", t.shape, t.fmt, scale=t.scale,
                              zero_point=t.zero_point, axis=t.axis)
        lo = max(int(lo_code), t.fmt.min) if lo_code != -np.inf else t.fmt.min
        hi = min(int(hi_code), t.fmt.max) if hi_code != np.inf else t.fmt.max
        self.graph.add_node("clamp", node_name, [r.tensor], [out], lo=lo, hi=hi)
        return out.name

    # ---- the walk ----------------------------------------------------------------------
    def run(self) -> Graph:
        g = self.model.graph
        # How many ONNX nodes (and graph outputs) read each tensor: a handler may fold into a
        # producer only what nothing else reads.
        self.uses = Counter(i for n in g.node for i in n.input if i)
        self.uses.update(o.name for o in g.output)
        for init in g.initializer:
            self.values[init.name] = Const(numpy_helper.to_array(init))
            self.elem_types[init.name] = init.data_type
        for inp in g.input:
            if inp.name in self.values:
                continue  # old exporters list initializers as inputs
            self._add_input(inp)
        from qfab.compiler.frontend.finn import read_annotations

        read_annotations(self)
        for node in g.node:
            self._visit(node)
        for out in g.output:
            self.graph.outputs.append(self._output(out))
        return self.graph

    def _add_input(self, inp: onnx.ValueInfoProto) -> None:
        tt = inp.type.tensor_type
        shape = []
        for i, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value"):
                shape.append(d.dim_value)
            elif i == 0:
                shape.append(1)  # a symbolic batch: the IR computes one sample at a time
            else:
                raise QfabError(f"graph input {inp.name!r}: dynamic dimension {i} "
                                f"({d.dim_param or '?'}); qfab needs static shapes")
        self.elem_types[inp.name] = tt.elem_type
        if dtypes.is_quantized_type(tt.elem_type):
            fmt = dtypes.format_of(tt.elem_type)
            self.graph.add_tensor(Tensor(inp.name, tuple(shape), fmt))
            self.values[inp.name] = Codes(inp.name)
        elif tt.elem_type in dtypes.FLOAT_TYPES:
            self.graph.add_tensor(Tensor(inp.name, tuple(shape), None))
            self.values[inp.name] = FloatIn(inp.name, tuple(shape))
        else:
            raise QfabError(f"graph input {inp.name!r}: element type "
                            f"{onnx.TensorProto.DataType.Name(tt.elem_type)} is not supported")
        self.graph.inputs.append(inp.name)

    def _visit(self, node: onnx.NodeProto) -> None:
        op = node.op_type
        ins = [self.values.get(i) if i else None for i in node.input]
        missing = [i for i, v in zip(node.input, ins, strict=True) if i and v is None]
        if missing:
            raise QfabError(f"{op} node {node.name!r}: input {missing[0]!r} is not defined")
        if op == "Constant":
            t = node.attribute[0]
            arr = (numpy_helper.to_array(t.t) if t.type == onnx.AttributeProto.TENSOR
                   else np.asarray(onnx.helper.get_attribute_value(t)))
            self.values[node.output[0]] = Const(arr)
            if t.type == onnx.AttributeProto.TENSOR:
                self.elem_types[node.output[0]] = t.t.data_type
            return
        if op == "Shape" and isinstance(ins[0], FloatIn | Codes | Real):
            shape = ins[0].shape if isinstance(ins[0], FloatIn) else self.tensor(
                ins[0].tensor).shape
            self.values[node.output[0]] = Const(np.array(shape, np.int64))
            return
        all_const = all(v is None or isinstance(v, Const) for v in ins)
        if all_const and (op in CONST_FOLDABLE or op not in HANDLERS):
            self._fold(node)
            return
        if any(isinstance(v, Stat) for v in ins):
            from qfab.compiler.frontend.dynamic import scalar_op

            outs = scalar_op(self, node)
            self.values.update(zip(node.output, outs, strict=False))
            return
        if any(isinstance(v, Float | Scaled) for v in ins):
            from qfab.compiler.frontend.dynamic import scaled_op

            self.values.update(zip(node.output, scaled_op(self, node), strict=False))
            return
        handler = HANDLERS.get(op)
        if handler is None:
            raise unsupported(f"unsupported op {op}", node.name or node.output[0],
                              sorted(set(HANDLERS) - {"Constant"}))
        outs = handler(self, node)
        for name, v in zip(node.output, outs, strict=False):
            self.values[name] = v

    def _fold(self, node: onnx.NodeProto) -> None:
        results = self._evaluate(node, {i: self.values[i].value for i in node.input if i})
        for name, arr in zip(node.output, results, strict=True):
            self.values[name] = Const(np.asarray(arr))
            with contextlib.suppress(KeyError, ValueError, TypeError):
                # A later DequantizeLinear reads the element type (int8, int4, float8, ...).
                self.elem_types[name] = onnx.helper.np_dtype_to_tensor_dtype(np.asarray(arr).dtype)
        first = self.values[node.input[0]] if node.input else None
        if node.op_type in LAYOUT_OPS and first.codes is not None:
            # Weights moved by layout ops keep their integer codes (e.g. QONNX's Transpose
            # after a weight Quant).
            feeds = {i: self.values[i].value for i in node.input if i}
            feeds[node.input[0]] = first.codes
            codes = self._evaluate(node, feeds)[0]
            axis = first.axis
            if node.op_type == "Transpose" and np.size(first.scale) > 1:
                axis = list(self.attr(node, "perm")).index(first.axis)
            elif node.op_type != "Identity" and np.size(first.scale) > 1:
                raise QfabError(f"{node.op_type} node {node.name!r}: reshaping per-channel "
                                "quantized weights is not supported")
            self.values[node.output[0]] = Const(
                self.values[node.output[0]].value, codes=np.asarray(codes, np.int64),
                fmt=first.fmt, scale=first.scale, zero_point=first.zero_point, axis=axis)

    def _evaluate(self, node: onnx.NodeProto, feeds: dict[str, np.ndarray]) -> list:
        from qfab.compiler.frontend.fold import fold

        folded = fold(node, feeds)
        if folded is not None:
            return folded
        from onnx.reference import ReferenceEvaluator

        inputs = [onnx.helper.make_tensor_value_info(i, self._elem_type(i, feeds[i]), None)
                  for i in feeds]
        outputs = [onnx.helper.make_tensor_value_info(o, 0, None) for o in node.output]
        g = onnx.helper.make_graph([node], "fold", inputs, outputs)
        m = onnx.helper.make_model(g, opset_imports=list(self.model.opset_import))
        try:
            return ReferenceEvaluator(m).run(None, feeds)
        except Exception as e:
            raise QfabError(f"{node.op_type} node {node.name!r}: cannot fold this constant "
                            f"subgraph ({type(e).__name__}: {e})") from None

    def _elem_type(self, name: str, array: np.ndarray) -> int:
        try:
            return onnx.helper.np_dtype_to_tensor_dtype(np.asarray(array).dtype)
        except (KeyError, ValueError, TypeError):
            return self.elem_types.get(name, onnx.TensorProto.FLOAT)

    def _output(self, out: onnx.ValueInfoProto) -> str:
        v = self.values.get(out.name)
        if isinstance(v, Stat):
            from qfab.compiler.frontend.dynamic import stat_output

            v = stat_output(self, v, out.name)
        if isinstance(v, Scaled):
            from qfab.compiler.frontend.dynamic import dequantize_scaled

            if out.name in self.graph.tensors:
                self.graph.rename(out.name, self.graph.fresh(out.name))
            return dequantize_scaled(self, v, out.name)
        if isinstance(v, Float) and np.any(v.factor != 1):
            raise QfabError(f"graph output {out.name!r}: a run-time scale times a constant")
        if isinstance(v, Codes | Float):
            if v.tensor != out.name:
                if out.name in self.graph.tensors:
                    self.graph.rename(out.name, self.graph.fresh(out.name))
                self.graph.rename(v.tensor, out.name)
            return out.name
        if isinstance(v, Real):
            if out.name in self.graph.tensors:  # e.g. a MatMul's accumulator named as the output
                renamed = self.graph.fresh(out.name)
                self.graph.rename(out.name, renamed)
                v = Real(renamed if v.tensor == out.name else v.tensor, v.lo, v.hi)
            y = Tensor(out.name, self.tensor(v.tensor).shape, None)
            et = out.type.tensor_type.elem_type
            # The IR computes in float32; a float16/float64 output is a final cast, as ONNX's
            # DequantizeLinear gives the scale's type.
            dtype = (np.dtype(onnx.helper.tensor_dtype_to_np_dtype(et)).name
                     if et in dtypes.FLOAT_TYPES else "float32")
            self.graph.add_node("dequantize", out.name, [v.tensor], [y], lo=v.lo, hi=v.hi,
                                dtype=dtype)
            return y.name
        raise QfabError(f"graph output {out.name!r} is not computed from quantized tensors")


def import_onnx(model: str | os.PathLike | onnx.ModelProto, input_format=None) -> Graph:
    """Read a quantized ONNX model (QDQ, QOperator or QONNX) into the integer IR.
    ``input_format`` (text such as ``fixed<16,6>``, see input_format.py) is the format of a
    float graph input that the model reads without quantizing it."""
    from qfab.compiler.frontend import (  # noqa: F401 (register handlers)
        activations,
        depth_to_space,
        dynamic,
        finn,
        float_ops,
        layout_ops,
        qdq,
        qonnx,
        spatial,
    )
    from qfab.compiler.frontend.channels_last import channels_first
    from qfab.compiler.frontend.validate import check_structure, validate_model

    if isinstance(input_format, str):
        from qfab.compiler.frontend.input_format import parse_input_format

        input_format = parse_input_format(input_format)
    model = load_model(model)
    check_structure(model)  # before the channels-last rewrite, which reorders nodes
    model = channels_first(model)
    validate_model(model)
    model = depth_to_space.sink_depth_to_space(model)
    return Importer(model, input_format).run()
