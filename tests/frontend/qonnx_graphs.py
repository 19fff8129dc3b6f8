"""Small QONNX graphs built in the tests (Quant, BipolarQuant, Trunc, FloatQuant), and a
runner for qonnx's own executor."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DOMAIN = "qonnx.custom_op.general"

# Minifloat formats as QONNX FloatQuant describes them: (exponent bits, mantissa bits, bias,
# max value, has_subnormal, has_inf, has_nan).
FLOAT_FORMATS = {
    "E4M3": (4, 3, 7, 448.0, 1, 0, 1),
    "E5M2": (5, 2, 15, 57344.0, 1, 1, 1),
    "E2M1": (2, 1, 1, 6.0, 1, 0, 0),
    "E3M2_nosub": (3, 2, 3, 28.0, 0, 0, 0),  # non-standard: no subnormals, all codes finite
}


class Builder:
    """Accumulates nodes and initializers; each method returns its output's name."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._count = 0

    def _name(self, base: str) -> str:
        self._count += 1
        return f"{base}{self._count}"

    def const(self, value, base: str = "c") -> str:
        name = self._name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], domain: str = "", **attrs) -> str:
        out = self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, domain=domain, **attrs))
        return out

    def quant(self, x: str, scale, bits: int, *, signed: int = 1, narrow: int = 0,
              zero_point=0.0, rounding: str = "ROUND") -> str:
        return self.node("Quant", [x, self.const(scale, "s"), self.const(zero_point, "zp"),
                                   self.const(bits, "bw")], DOMAIN, signed=signed,
                         narrow=narrow, rounding_mode=rounding)

    def bipolar(self, x: str, scale=1.0) -> str:
        return self.node("BipolarQuant", [x, self.const(scale, "s")], DOMAIN)

    def trunc(self, x: str, scale, in_bits: int, out_bits: int, rounding="FLOOR") -> str:
        return self.node("Trunc", [x, self.const(scale, "s"), self.const(0.0, "zp"),
                                   self.const(in_bits, "ibw"), self.const(out_bits, "obw")],
                         DOMAIN, rounding_mode=rounding)

    def float_quant(self, x: str, scale, fmt: str) -> str:
        e, m, bias, max_val, sub, inf, nan = FLOAT_FORMATS[fmt]
        return self.node("FloatQuant", [x, self.const(scale, "s"), self.const(e, "e"),
                                        self.const(m, "m"), self.const(bias, "b"),
                                        self.const(max_val, "max")], DOMAIN,
                         has_subnormal=sub, has_inf=inf, has_nan=nan, saturation=1)

    def multithreshold(self, x: str, thresholds: np.ndarray, out_scale: float,
                       out_bias: float, out_dtype: str) -> str:
        return self.node("MultiThreshold", [x, self.const(thresholds, "thr")], DOMAIN,
                         out_dtype=out_dtype, out_scale=out_scale, out_bias=out_bias)

    def weight(self, values: np.ndarray) -> str:
        return self.const(values, "w")

    def model(self, x_shape: tuple[int, ...], out: str) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, "qonnx_test",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], self.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                       helper.make_opsetid(DOMAIN, 1)])


def pow2(rng: np.random.Generator, lo: int, hi: int, size) -> np.ndarray:
    """Powers of two 2**k, k in [lo, hi]: scales for which qonnx's float32 is exact."""
    return np.ldexp(1.0, rng.integers(lo, hi + 1, size)).astype(np.float32)


def qonnx_run(model: onnx.ModelProto, x: np.ndarray, keep: str | None = None):
    """qonnx's executor, one sample at a time (the graphs have batch 1). With ``keep``, also
    return that intermediate tensor."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.cleanup import cleanup_model

    # cleanup_model renames tensors: to keep one by name, only infer shapes.
    wrapped = (ModelWrapper(model).transform(InferShapes()) if keep
               else cleanup_model(ModelWrapper(model)))
    iname, oname = wrapped.graph.input[0].name, wrapped.graph.output[0].name
    outs, kept = [], []
    for sample in x:
        ctx = execute_onnx(wrapped, {iname: sample[None].astype(np.float32)},
                           return_full_exec_context=keep is not None)
        outs.append(ctx[oname])
        if keep is not None:
            kept.append(ctx[keep])
    y = np.concatenate(outs)
    return (y, np.concatenate(kept)) if keep is not None else y


def to_qcdq(path: str) -> onnx.ModelProto:
    """A QONNX model as QuantizeLinear/Clip/DequantizeLinear (qonnx's QuantToQCDQ), the form
    Brevitas exports for sub-8-bit QDQ, and one onnxruntime can execute."""
    import warnings

    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.qonnx_to_qcdq import QuantToQCDQ
    from qonnx.util.cleanup import cleanup_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # opset upgrade notices
        model = cleanup_model(ModelWrapper(path)).transform(QuantToQCDQ())
        return cleanup_model(model).model
