"""XNOR-popcount matrix-vector unit: binary weights times binary activations, as FINN does it.

A product of two {-1, +1} values is +1 when their signs agree: one XNOR of two bits. A dot
product over ``MW`` of them is ``2 * popcount - MW``, so each PE counts the agreeing bits
of a synapse fold (a tree of 1-bit sums, not of 2-bit signed products), accumulates the
count over the folds, and turns the count into the signed sum once, at the output. The
folding, timing and stream ports are the :class:`~qfab.hw.mvu.MatrixVectorUnit`'s.

Weights are stored as one bit (1 is +1, a :class:`~qfab.hw.multipliers.BipolarDecoder`).
Activations arrive either as one bit the same way, or as the codes -1/+1 of a bipolar
threshold in a signed stream element (:class:`BipolarCodeDecoder`), whose sign bit is the bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from amaranth.hdl import Module, Shape, signed
from qfab.hw.multipliers import BipolarDecoder, Multiplier, OperandDecoder
from qfab.hw.mvu import MatrixVectorUnit

__all__ = ["BipolarCodeDecoder", "XnorPopcountUnit", "is_xnor", "xnor_popcount_model"]


class BipolarCodeDecoder(OperandDecoder):
    """The codes -1 and +1 in ``signed(bits)``: the value is the code, its sign bit says -1.

    Parameters
    ----------
    bits : int
        Width of the signed code on the stream, at least 2 (a QCDQ model may carry its
        bipolar activations as int8).
    """

    def __init__(self, bits: int = 2):
        if bits < 2:
            raise ValueError(f"a signed code holding -1 and +1 needs 2 bits, not {bits}")
        self.code_shape = signed(bits)
        self.lsb_exponent = 0

    @property
    def value_min(self) -> int:
        return -1

    @property
    def value_max(self) -> int:
        return 1

    @property
    def value_shape(self) -> Shape:
        return signed(2)

    def check_codes(self, codes: Any, what: str) -> np.ndarray:
        arr = super().check_codes(codes, what)
        bad = arr[np.abs(arr) != 1]
        if bad.size:
            raise ValueError(f"{what} code {int(bad.flat[0])} is not -1 or +1")
        return arr

    def decode(self, m: Module, code: Any) -> Any:
        return code

    def model(self, codes: Any) -> np.ndarray:
        return np.asarray(codes, dtype=np.int64)

    def __repr__(self) -> str:
        return f"BipolarCodeDecoder({self.code_shape.width})"


def _negative_bit(decoder: OperandDecoder, code: Any) -> Any:
    """The bit that is 1 when the operand is -1."""
    if isinstance(decoder, BipolarCodeDecoder):
        return code[-1]
    return ~code[0]


def is_xnor(multiplier: Multiplier | None) -> bool:
    """Whether both operands of ``multiplier`` are binary {-1, +1}."""
    binary = (BipolarDecoder, BipolarCodeDecoder)
    return multiplier is not None and isinstance(multiplier.a, binary) and isinstance(
        multiplier.b, binary)


def xnor_popcount_model(weight_bits: np.ndarray, activation_bits: np.ndarray) -> np.ndarray:
    """``2 * popcount(xnor(x, w)) - MW`` for bits (1 is +1): ``[..., MW]`` activations and
    ``[MH, MW]`` weights give ``[..., MH]`` int64 dot products of the +-1 values."""
    w = np.asarray(weight_bits, np.int64).astype(bool)
    x = np.asarray(activation_bits, np.int64).astype(bool)
    agree = (x[..., None, :] == w).sum(axis=-1)
    return 2 * agree.astype(np.int64) - w.shape[1]


class XnorPopcountUnit(MatrixVectorUnit):
    """Folded matrix-vector multiply of {-1, +1} vectors by a {-1, +1} matrix, by XNOR and
    popcount.

    Parameters
    ----------
    weights : ndarray of int, shape [MH, MW]
        Weight bits, 1 for +1 and 0 for -1.
    acc_shape : ShapeLike
        Signed accumulator shape; must hold -MW..MW.
    pe, simd, pipelined, double_buffered, weight_lanes
        As :class:`~qfab.hw.mvu.MatrixVectorUnit`.
    multiplier : Multiplier, optional
        Its decoders say how the operands are coded (:func:`is_xnor` must hold); default
        one-bit activations and weights.

    Members
    -------
    i_stream, o_stream
        As :class:`~qfab.hw.mvu.MatrixVectorUnit`.
    """

    def __init__(self, *, weights: np.ndarray, acc_shape: Any, pe: int, simd: int,
                 multiplier: Multiplier | None = None, pipelined: bool = False,
                 double_buffered: bool = False, weight_lanes: bool = False):
        multiplier = multiplier or Multiplier(BipolarDecoder(), BipolarDecoder())
        if not is_xnor(multiplier):
            raise ValueError(f"an XNOR unit needs two binary operands, not {multiplier!r}")
        super().__init__(weights=weights, acc_shape=acc_shape, pe=pe, simd=simd,
                         multiplier=multiplier, pipelined=pipelined,
                         double_buffered=double_buffered, weight_lanes=weight_lanes)
        acc = Shape.cast(acc_shape)
        if not acc.signed or (1 << (acc.width - 1)) <= self.mw:
            raise ValueError(f"acc_shape {acc_shape!r} does not hold -{self.mw}..{self.mw}")

    def model(self, vectors: np.ndarray) -> np.ndarray:
        """Exact results for the activation codes ``vectors`` ``[..., MW]``."""
        bits = self.multiplier.a.model(vectors) > 0
        return xnor_popcount_model(self.multiplier.b.model(self.weights) > 0, bits)

    def _terms(self, m: Module, x: Any, w: Any) -> list:
        # a bit a product: 1 where the signs agree; their count, not a sum of +-1 values
        return [~(_negative_bit(self.multiplier.a, x[s]) ^ _negative_bit(self.multiplier.b,
                                                                        w[s]))
                for s in range(self.simd)]

    def _result(self, total: Any) -> Any:
        return (total << 1) - self.mw
