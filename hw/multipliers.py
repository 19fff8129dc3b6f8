"""Operand decoders and multipliers, one per number format.

A decoder turns the code an operand is stored as (an integer, a fixed-point word, a bipolar
bit, a minifloat) into an exact integer in units of ``2**lsb_exponent``. A product of two
decoded operands is then an exact integer in units of ``2**(a.lsb_exponent + b.lsb_exponent)``,
so a dot product accumulates exactly in fixed point in any order, and the hardware agrees bit
for bit with the NumPy model (``model`` beside each decoder).

The matrix-vector unit takes a :class:`Multiplier` (a pair of decoders); the default one for
plain integers is ``Multiplier(IntDecoder(in_shape), IntDecoder(weight_shape))``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, signed, unsigned
from qfab.hw._checks import check_shape
from qfab.numerics import width_for

__all__ = [
    "OperandDecoder",
    "IntDecoder",
    "BipolarDecoder",
    "MinifloatDecoder",
    "Multiplier",
    "shape_range",
    "shape_for_range",
    "lut_product_bits",
    "lut_product_terms",
]


def shape_range(shape: Shape) -> tuple[int, int]:
    """The smallest and largest integer a Shape holds."""
    shape = Shape.cast(shape)
    if shape.signed:
        return -(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1
    return 0, (1 << shape.width) - 1


def shape_for_range(lo: int, hi: int) -> Shape:
    """The narrowest Shape holding every integer in ``[lo, hi]`` (signed if ``lo < 0``)."""
    width, is_signed = width_for(lo, hi)
    return Shape(width, is_signed)


class OperandDecoder:
    """Base of the decoders: code in, exact integer out.

    Members
    -------
    code_shape : Shape
        Shape of the code as stored in memory or carried on a stream.
    value_shape : Shape
        Shape of the decoded integer.
    lsb_exponent : int
        The decoded integer counts units of ``2**lsb_exponent``.
    value_min, value_max : int
        Range of the decoded integer over every code this decoder accepts.
    """

    code_shape: Shape
    lsb_exponent: int = 0

    @property
    def value_min(self) -> int:
        return int(self.model(self._codes()).min())

    @property
    def value_max(self) -> int:
        return int(self.model(self._codes()).max())

    @property
    def value_shape(self) -> Shape:
        return shape_for_range(self.value_min, self.value_max)

    def _codes(self) -> np.ndarray:
        lo, hi = shape_range(self.code_shape)
        return np.arange(lo, hi + 1, dtype=np.int64)

    def check_codes(self, codes: Any, what: str) -> np.ndarray:
        """Return ``codes`` as int64, or raise ValueError if one does not fit ``code_shape``."""
        arr = np.asarray(codes)
        if arr.dtype.kind not in "iub":
            raise ValueError(f"{what} must be integer codes, not dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        lo, hi = shape_range(self.code_shape)
        bad = arr[(arr < lo) | (arr > hi)]
        if bad.size:
            raise ValueError(f"{what} code {int(bad.flat[0])} does not fit {self.code_shape!r}")
        return arr

    def decode(self, m: Module, code: Any) -> Any:
        """Add to ``m`` the combinational logic decoding ``code``; return the integer value."""
        raise NotImplementedError

    def cache_fields(self) -> dict[str, Any]:
        """What the decoder is made of (its attributes), for the key of a cache of what is
        built from it."""
        return dict(vars(self))

    def split(self, m: Module, code: Any) -> tuple[Any, Any]:
        """The value as ``(significand, shift)`` with value ``significand << shift``; ``shift``
        is None for formats without an exponent. A product multiplies the narrow
        significands and shifts once, instead of multiplying two wide fixed-point words."""
        return self.decode(m, code), None

    def model(self, codes: Any) -> np.ndarray:
        """Decoded integers of ``codes`` (what :meth:`decode` computes): int64, or Python ints
        in an object array when they may not fit."""
        raise NotImplementedError


class IntDecoder(OperandDecoder):
    """Integers and fixed-point words: the code is the value, in units of ``2**-frac_bits``.

    Parameters
    ----------
    shape : ShapeLike
        Shape of the integer (1 to 32 bits, signed or unsigned). Binary weights {-1, +1} and
        ternary weights {-1, 0, +1} are ``signed(2)``.
    frac_bits : int
        Fraction bits of a fixed-point format; 0 for plain integers.
    """

    def __init__(self, shape: Any, *, frac_bits: int = 0):
        shape = check_shape("integer operand shape", shape)
        if not 1 <= shape.width <= 32:
            raise ValueError(f"integer operand width must be 1..32, not {shape.width}")
        if not isinstance(frac_bits, int):
            raise ValueError(f"frac_bits must be an int, not {frac_bits!r}")
        self.code_shape = shape
        self.frac_bits = frac_bits
        self.lsb_exponent = -frac_bits

    @property
    def value_min(self) -> int:
        return shape_range(self.code_shape)[0]

    @property
    def value_max(self) -> int:
        return shape_range(self.code_shape)[1]

    @property
    def value_shape(self) -> Shape:
        return self.code_shape

    def decode(self, m: Module, code: Any) -> Any:
        return code

    def model(self, codes: Any) -> np.ndarray:
        return np.asarray(codes, dtype=np.int64)

    def __repr__(self) -> str:
        return f"IntDecoder({self.code_shape!r}, frac_bits={self.frac_bits})"


class BipolarDecoder(OperandDecoder):
    """Bipolar {-1, +1} stored in one bit: 0 is -1, 1 is +1 (as QONNX BipolarQuant)."""

    def __init__(self):
        self.code_shape = unsigned(1)
        self.lsb_exponent = 0

    @property
    def value_shape(self) -> Shape:
        return signed(2)

    def decode(self, m: Module, code: Any) -> Any:
        value = Signal(signed(2))
        m.d.comb += value.eq(Cat(Const(1, 1), ~code[0]))
        return value

    def model(self, codes: Any) -> np.ndarray:
        return np.asarray(codes, dtype=np.int64) * 2 - 1

    def __repr__(self) -> str:
        return "BipolarDecoder()"


class MinifloatDecoder(OperandDecoder):
    """Minifloat code to exact fixed point: sign, implicit bit, shift by the exponent.

    With ``s0 = 1`` if the format has subnormals else ``0``, the magnitude of a code with
    exponent field ``e`` and mantissa ``m`` counts ``(2**M + m) << (e - s0)`` units of
    ``2**fmt.lsb_exponent``, except for ``e == 0``: ``m`` with subnormals, and without them
    zero when ``m == 0`` (and M > 0). That is ``fmt.to_fixed``. Codes that are NaN or infinity
    in the format decode as if their exponent were ordinary: quantizers saturate, so they
    never reach the hardware.

    Parameters
    ----------
    fmt : qfab.numerics.MinifloatFormat
        The format (exp_bits, man_bits, subnormals, bits, lsb_exponent, to_fixed).
    """

    def __init__(self, fmt: Any):
        for attr in ("exp_bits", "man_bits", "subnormals", "bits", "lsb_exponent", "to_fixed"):
            if not hasattr(fmt, attr):
                raise ValueError(f"{fmt!r} is not a minifloat format: no {attr!r}")
        self.fmt = fmt
        self.code_shape = unsigned(fmt.bits)
        self.lsb_exponent = int(fmt.lsb_exponent)
        self._s0 = int(bool(fmt.subnormals))

    def check_codes(self, codes: Any, what: str) -> np.ndarray:
        arr = super().check_codes(codes, what)
        self.fmt.to_fixed(arr)  # raises ValueError on a NaN or infinity code
        return arr

    def _magnitude_max(self) -> int:
        m_bits, top = self.fmt.man_bits, (1 << self.fmt.exp_bits) - 1
        return ((2 << m_bits) - 1) << max(top - self._s0, 0)

    @property
    def value_min(self) -> int:
        return int(self.fmt.fixed_min)

    @property
    def value_max(self) -> int:
        return int(self.fmt.fixed_max)

    def split(self, m: Module, code: Any) -> tuple[Any, Any]:
        e_bits, m_bits = self.fmt.exp_bits, self.fmt.man_bits
        man = code[:m_bits] if m_bits else Const(0, 1)
        exp = code[m_bits:m_bits + e_bits]
        sign = code[m_bits + e_bits]
        implicit = Cat(code[:m_bits], Const(1, 1))
        magnitude = Signal(m_bits + 1)
        shift = Signal(e_bits)
        m.d.comb += [magnitude.eq(implicit), shift.eq(exp - self._s0)]
        with m.If(exp == 0):
            m.d.comb += shift.eq(0)
            if self._s0:
                m.d.comb += magnitude.eq(man)
            elif m_bits:
                m.d.comb += magnitude.eq(Mux(man == 0, 0, implicit))
        significand = Signal(signed(m_bits + 2))
        m.d.comb += significand.eq(Mux(sign, -magnitude, magnitude))
        return significand, shift

    def decode(self, m: Module, code: Any) -> Any:
        significand, shift = self.split(m, code)
        value = Signal(signed(self._magnitude_max().bit_length() + 1))
        m.d.comb += value.eq(significand << shift)
        return value

    def model(self, codes: Any) -> np.ndarray:
        codes = np.asarray(codes, dtype=np.int64)
        if self._magnitude_max() >= 1 << 62:  # wide exponents: Python ints, not int64
            codes = codes.astype(object)
        m_bits, e_bits = self.fmt.man_bits, self.fmt.exp_bits
        man = codes & ((1 << m_bits) - 1)
        exp = (codes >> m_bits) & ((1 << e_bits) - 1)
        sign = (codes >> (m_bits + e_bits)) & 1
        magnitude = (man + (1 << m_bits)) << np.maximum(exp - self._s0, 0)
        if self._s0:
            magnitude = np.where(exp == 0, man, magnitude)
        elif m_bits:
            magnitude = np.where((exp == 0) & (man == 0), 0, magnitude)
        return np.where(sign == 1, -magnitude, magnitude)

    def __repr__(self) -> str:
        return f"MinifloatDecoder({self.fmt!r})"


class Multiplier:
    """An exact product of two decoded operands.

    Parameters
    ----------
    a : OperandDecoder
        Decoder of the streamed operand (the activations of a matrix-vector unit).
    b : OperandDecoder
        Decoder of the stored operand (the weights).

    Members
    -------
    lsb_exponent : int
        The product counts units of ``2**(a.lsb_exponent + b.lsb_exponent)``.
    product_min, product_max : int
        Range of the product over all codes.
    """

    def __init__(self, a: OperandDecoder, b: OperandDecoder):
        for name, dec in (("a", a), ("b", b)):
            if not isinstance(dec, OperandDecoder):
                raise ValueError(f"multiplier operand {name} must be an OperandDecoder, "
                                 f"not {dec!r}")
        self.a = a
        self.b = b

    @property
    def lsb_exponent(self) -> int:
        return self.a.lsb_exponent + self.b.lsb_exponent

    @property
    def product_min(self) -> int:
        return min(x * y for x in (self.a.value_min, self.a.value_max)
                   for y in (self.b.value_min, self.b.value_max))

    @property
    def product_max(self) -> int:
        return max(x * y for x in (self.a.value_min, self.a.value_max)
                   for y in (self.b.value_min, self.b.value_max))

    def product(self, m: Module, a_code: Any, b_code: Any) -> Any:
        """Add the decoders and the multiply to ``m``; return the exact product."""
        a_bipolar = isinstance(self.a, BipolarDecoder)
        b_bipolar = isinstance(self.b, BipolarDecoder)
        if a_bipolar and b_bipolar:  # XNOR: +1 when the bits agree
            return Cat(Const(1, 1), a_code[0] ^ b_code[0]).as_signed()
        if a_bipolar or b_bipolar:  # a sign flip, not a multiply
            bit, other, dec = (a_code, b_code, self.b) if a_bipolar else (b_code, a_code, self.a)
            value = dec.decode(m, other)
            return Mux(bit[0], value, -value)
        a_sig, a_shift = self.a.split(m, a_code)
        b_sig, b_shift = self.b.split(m, b_code)
        shifts = [s for s in (a_shift, b_shift) if s is not None]
        product = a_sig * b_sig
        if not shifts:
            return product
        return product << (shifts[0] if len(shifts) == 1 else shifts[0] + shifts[1])

    def model(self, a_codes: Any, b_codes: Any) -> np.ndarray:
        """Element-wise exact products of two arrays of codes: int64, or Python ints in an
        object array when the product range exceeds int64."""
        a, b = self.a.model(a_codes), self.b.model(b_codes)
        if max(-self.product_min, self.product_max) >= 1 << 62:
            a, b = np.asarray(a).astype(object), np.asarray(b).astype(object)
        return a * b

    def cache_fields(self) -> dict[str, Any]:
        """Its two decoders, for the key of a cache of what is built from it."""
        return {"a": self.a, "b": self.b}

    def __repr__(self) -> str:
        return f"Multiplier({self.a!r}, {self.b!r})"


def lut_product_bits(multiplier: Multiplier) -> int:
    """Partial products of one product in LUTs: one for each bit of the operand whose bits
    select them (:func:`_selector`); 0 for operands that are not plain integers (no LUT
    products)."""
    a, b = multiplier.a, multiplier.b
    if type(a) is not IntDecoder or type(b) is not IntDecoder:
        return 0
    return _selector(a.code_shape, b.code_shape)[1].width


def _selector(a: Shape, b: Shape) -> tuple[bool, Shape]:
    """(whether ``a`` selects the partial products, the selecting operand's shape): the
    narrower operand, of two as wide the unsigned one (no negated term), else ``b``."""
    pick_a = (a.width, a.signed) < (b.width, b.signed)
    return pick_a, a if pick_a else b


def lut_product_terms(x: Any, w: Any, x_shape: Shape, w_shape: Shape) -> list:
    """The partial products of ``x * w`` (two plain integers) whose sum is the product: a
    shifted copy of the other operand where a bit of the selecting one is set, negated for
    the sign bit of a signed selector (:func:`_selector`)."""
    pick_x, sel_shape = _selector(x_shape, w_shape)
    sel, other = (x, w) if pick_x else (w, x)
    terms = []
    for i in range(sel_shape.width):
        term = Mux(sel[i], other, 0) << i
        terms.append(-term if sel_shape.signed and i == sel_shape.width - 1 else term)
    return terms
