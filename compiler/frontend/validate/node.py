"""A node under validation: the constants it reads and checks that raise one-line errors."""

from __future__ import annotations

import numpy as np
import onnx

from qfab.errors import QfabError

# Ops that keep their first input's shape: a weight's shape is seen through them.
_SHAPE_KEEPING = {"DequantizeLinear", "QuantizeLinear", "Clip", "Quant", "IntQuant",
                  "BipolarQuant", "FloatQuant", "Identity", "Cast"}


class CheckedNode:
    """A node with the constants it reads, and checks that raise one-line errors."""

    def __init__(self, node: onnx.NodeProto, consts: dict[str, np.ndarray],
                 producers: dict[str, onnx.NodeProto]):
        self.node = node
        self.consts = consts
        self.producers = producers
        self.attrs = {a.name: a for a in node.attribute}

    def fail(self, message: str) -> QfabError:
        return QfabError(f"{self.node.op_type} node {self.node.name!r}: {message}")

    def const(self, i: int) -> np.ndarray | None:
        """Input ``i`` when it is a constant (None when absent or computed)."""
        n = self.node
        if i >= len(n.input) or not n.input[i]:
            return None
        return self.consts.get(n.input[i])

    def source_shape(self, i: int) -> list[int] | None:
        """The shape of input ``i`` when it is a constant, or a constant seen through
        shape-keeping quantizers (a DequantizeLinear or Quant of weights)."""
        if not self.has_input(i):
            return None
        name = self.node.input[i]
        for _ in range(4):
            if name in self.consts:
                return list(self.consts[name].shape)
            producer = self.producers.get(name)
            if producer is None or producer.op_type not in _SHAPE_KEEPING or not producer.input:
                return None
            name = producer.input[0]
        return None

    def has_input(self, i: int) -> bool:
        return i < len(self.node.input) and bool(self.node.input[i])

    def int_attr(self, name: str, default: int | None, lo: int, hi: int | None = None):
        """An attribute that must be an integer in lo..hi (a float one must be integral)."""
        a = self.attrs.get(name)
        if a is None:
            return default
        if a.type == onnx.AttributeProto.INT:
            v = a.i
        elif a.type == onnx.AttributeProto.FLOAT and np.isfinite(a.f) and a.f == int(a.f):
            v = int(a.f)
        else:
            raise self.fail(f"attribute {name} must be an integer (got "
                            f"{onnx.helper.get_attribute_value(a)!r})")
        if v < lo or (hi is not None and v > hi):
            raise self.fail(f"attribute {name} = {v} is outside {lo}.."
                            f"{'' if hi is None else hi}")
        return v

    def flag(self, name: str, default: int) -> int:
        return self.int_attr(name, default, 0, 1)

    def ints_attr(self, name: str, lo: int, length: int | None = None) -> list[int] | None:
        a = self.attrs.get(name)
        if a is None:
            return None
        if a.type != onnx.AttributeProto.INTS:
            raise self.fail(f"attribute {name} must be a list of integers")
        v = list(a.ints)
        if length is not None and len(v) != length:
            raise self.fail(f"attribute {name} = {v} needs {length} values")
        if any(x < lo for x in v):
            raise self.fail(f"attribute {name} = {v}: every value must be >= {lo}")
        return v

    def float_attr(self, name: str) -> None:
        a = self.attrs.get(name)
        if a is not None and a.type == onnx.AttributeProto.FLOAT and not np.isfinite(a.f):
            raise self.fail(f"attribute {name} = {a.f} is not finite")

    def string_attr(self, name: str, allowed: tuple[str, ...], fold_case: bool = False) -> None:
        a = self.attrs.get(name)
        if a is None:
            return
        v = a.s.decode("utf-8", "replace") if a.type == onnx.AttributeProto.STRING else None
        if (v.upper() if fold_case and v is not None else v) not in allowed:
            raise self.fail(f"attribute {name} = {v!r} is not one of {', '.join(allowed)}")

    def scale(self, i: int, what: str = "scale") -> np.ndarray | None:
        """A quantizer scale: finite, positive and normal in its own float type."""
        s = self.const(i)
        if s is None:
            return None
        if s.dtype.kind != "f" or s.size == 0:
            raise self.fail(f"{what} {self.node.input[i]!r} must be a non-empty float tensor "
                            f"(got {s.dtype}, shape {list(s.shape)})")
        tiny = np.finfo(s.dtype).smallest_normal
        bad = ~(np.isfinite(s) & (s >= tiny))
        if bad.any():
            v = s.reshape(-1)[np.argmax(bad.reshape(-1))]
            kind = ("not finite" if not np.isfinite(v) else "not positive" if v <= 0
                    else f"subnormal in {s.dtype}")
            raise self.fail(f"{what} {self.node.input[i]!r} = {v} is {kind}; scales must be "
                            "finite, positive and normal")
        return s

    def integral(self, i: int, what: str, lo: float, hi: float | None = None) -> int | None:
        """A scalar input that must hold an integer in lo..hi (QONNX bit widths)."""
        v = self.const(i)
        if v is None:
            return None
        if v.size != 1 or v.dtype.kind not in "fiu":
            raise self.fail(f"{what} {self.node.input[i]!r} must be a scalar number")
        x = float(v.reshape(-1)[0])
        if not np.isfinite(x) or x != int(x) or x < lo or (hi is not None and x > hi):
            rng = f"{lo:g}..{'' if hi is None else f'{hi:g}'}"
            raise self.fail(f"{what} {self.node.input[i]!r} = {x:g} must be an integer in {rng}")
        return int(x)

    def finite(self, i: int, what: str) -> None:
        v = self.const(i)
        if v is not None and v.dtype.kind == "f" and not np.all(np.isfinite(v)):
            raise self.fail(f"{what} {self.node.input[i]!r} holds a value that is not finite")


