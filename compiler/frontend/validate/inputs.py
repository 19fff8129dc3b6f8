"""Input arrays (what `qfab reference` and `qfab.run` take) checked like models."""

from __future__ import annotations

import numpy as np

from qfab.errors import QfabError


def check_input_array(name: str, array: np.ndarray, fmt) -> None:
    """An input batch for graph input ``name`` of format ``fmt`` (None: a float input):
    numbers of a real type, at least one sample, finite floats, integer codes in range."""
    kind = array.dtype.kind
    # ml_dtypes' types (what ONNX TensorProto files give) are kind "V".
    float8 = kind == "V" and array.dtype.name.startswith(("float8", "float4"))
    if kind == "V" and array.dtype.name.startswith(("int", "uint")):
        array, kind = array.astype(np.int64), "i"
    if kind not in "fiu" and not float8:
        raise QfabError(f"input {name!r}: dtype {array.dtype} is not a real number type")
    if array.ndim == 0 or array.shape[0] == 0:
        raise QfabError(f"input {name!r}: shape {array.shape} holds no sample (an empty batch)")
    # min and max carry a NaN through and meet any infinity: two reductions, no temporary
    if fmt is None and kind == "f" and array.size and not (
            np.isfinite(array.min()) and np.isfinite(array.max())):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise QfabError(f"input {name!r}: {bad} values are NaN or infinite")
    minifloat = not hasattr(fmt, "min")
    if fmt is None or float8 or (minifloat and kind == "f"):
        return  # floats, or minifloat values that the format encodes (NaN and inf too)
    if kind == "f" and np.any(array != np.round(array)):
        raise QfabError(f"input {name!r}: the model takes integer codes ({fmt}); the array "
                        "holds fractions")
    lo, hi = (0, (1 << fmt.bits) - 1) if minifloat else (fmt.min, fmt.max)
    if array.size and (array.min() < lo or array.max() > hi):
        raise QfabError(f"input {name!r}: codes {array.min()}..{array.max()} lie outside "
                        f"{fmt}'s {lo}..{hi}")
