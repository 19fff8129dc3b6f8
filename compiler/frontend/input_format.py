"""The number format of a float graph input the model does not quantize (``--input-format``).

Keras/QKeras models exported for hls4ml read a float input with no quantizer: hls4ml gives
it a fixed-point type (``ap_fixed<16,6>`` by default) and the host converts each value to it.
qfab takes that type from the user, quantizes the input at the graph boundary the same way
(an IR ``quantize`` node, run on the host like any model's input quantizer), and the
accelerator computes on the codes.

Forms:
- ``fixed<W,I>`` / ``ap_fixed<W,I[,Q[,O]]>`` (``ufixed`` / ``ap_ufixed`` unsigned): W bits,
  I of them integer bits (the sign included, as in ap_fixed), so codes are W-bit integers in
  units of 2**-(W-I). Q is AP_TRN (floor, ap_fixed's default), AP_RND (half up) or
  AP_RND_CONV (half to even); O is AP_WRAP (ap_fixed's default) or AP_SAT.
- ``int8``, ``uint4``, ... and ``int8:SCALE``: integer codes times SCALE (default 1), rounded
  half to even and saturated, as ONNX's QuantizeLinear.
- a minifloat name (``E4M3``, ``E4M3FN``, ``E5M2``, ``E3M2FN``, ``E2M3FN``, ``E2M1FN``):
  round to nearest even, saturating.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from qfab.compiler.frontend.values import FloatIn, Real
from qfab.numerics import IntFormat, MinifloatFormat

from qfab.errors import QfabError

_AP_ROUNDING = {"AP_TRN": "floor", "AP_RND": "half_up", "AP_RND_CONV": "half_even"}
_AP_OVERFLOW = {"AP_WRAP": False, "AP_SAT": True}
_MINIFLOATS = {"E4M3": "E4M3FN", "E4M3FN": "E4M3FN", "E5M2": "E5M2", "E3M2FN": "E3M2FN",
               "E3M2": "E3M2FN", "E2M3FN": "E2M3FN", "E2M3": "E2M3FN", "E2M1FN": "E2M1FN",
               "E2M1": "E2M1FN"}
FORMS = "fixed<16,6>, ap_fixed<W,I[,AP_RND|AP_RND_CONV[,AP_SAT]]>, int8, int8:SCALE, uint8, E4M3"


@dataclass(frozen=True)
class InputFormat:
    """How a float input becomes codes: ``round(x / scale)`` by ``rounding``, saturated to
    ``fmt`` or wrapped around it."""

    text: str
    fmt: IntFormat | MinifloatFormat
    scale: float
    rounding: str = "half_even"
    saturate: bool = True


def parse_input_format(text: str) -> InputFormat:
    spec = text.strip().replace(" ", "")
    m = re.fullmatch(r"(ap_)?(u?)fixed<(\d+),(-?\d+)(?:,(\w+))?(?:,(\w+))?>", spec)
    if m:
        _, unsigned, width, int_bits, q, o = m.groups()
        width, int_bits = int(width), int(int_bits)
        q, o = (q or "AP_TRN").upper(), (o or "AP_WRAP").upper()
        if not 1 <= width <= 32 or int_bits > width:
            raise QfabError(f"--input-format {text}: W must be 1..32 and I at most W")
        if q not in _AP_ROUNDING or o not in _AP_OVERFLOW:
            raise QfabError(f"--input-format {text}: rounding {q} / overflow {o} not supported "
                            f"(rounding: {', '.join(_AP_ROUNDING)}; overflow: "
                            f"{', '.join(_AP_OVERFLOW)})")
        return InputFormat(text, IntFormat(bits=width, signed=not unsigned),
                           2.0 ** (int_bits - width), _AP_ROUNDING[q], _AP_OVERFLOW[o])
    m = re.fullmatch(r"(u?)int(\d+)(?::(.+))?", spec.lower())
    if m:
        unsigned, bits, scale = m.groups()
        try:
            value = float(scale) if scale is not None else 1.0
        except ValueError:
            value = float("nan")
        if not 1 <= int(bits) <= 32 or not (np.isfinite(value) and value > 0):
            raise QfabError(f"--input-format {text}: bits must be 1..32 and the scale a "
                            "positive number")
        return InputFormat(text, IntFormat(bits=int(bits), signed=not unsigned), value)
    preset = _MINIFLOATS.get(spec.upper())
    if preset is not None:
        return InputFormat(text, getattr(MinifloatFormat, preset), 1.0)
    raise QfabError(f"--input-format {text!r} is not a format (forms: {FORMS})")


def input_real(imp, v: FloatIn) -> Real:
    """The float input ``v`` quantized to the importer's input format: one ``quantize`` node
    per input (and chain of float pre-processing), shared by every reader."""
    key = (v.tensor, repr(v.pre))
    cached = imp.input_quantizers.get(key)
    if cached is not None:
        return Real(cached)
    f: InputFormat = imp.input_format
    attrs = dict(pre=v.pre, saturate=f.saturate, rounding=f.rounding)
    if isinstance(f.fmt, IntFormat) and not f.saturate:
        attrs["overflow"] = "wrap"
    t = imp.new_tensor(v.tensor + "_in", v.shape, f.fmt, scale=np.asarray(f.scale, np.float32),
                       zero_point=np.zeros((), np.int64))
    imp.graph.add_node("quantize", t.name, [v.tensor], [t], **attrs)
    imp.input_quantizers[key] = t.name
    return Real(t.name)
