"""The arithmetic the reference's integer ops share: exact products of integer matrices (float32
or float64 BLAS where every partial sum provably fits the significand, int64 within 62 bits,
else Python ints), BLAS kept to one thread, convolution by im2col, and rounding shifts.
"""

from __future__ import annotations

import functools
import math
import threading

import numpy as np
from qfab.compiler.ir import Graph, Node
from qfab.numerics import round_shift

# Integers below these are exact in float32 and float64.
F32_EXACT, F64_EXACT = 2**24, 2**53


def _bound(a: np.ndarray) -> int:
    """max |a|, from two reductions (no temporary array; the ufuncs' own, without the
    wrappers of ``a.max()``, which took as long on a small layer) in Python ints."""
    if not a.size:
        return 0
    return max(int(np.maximum.reduce(a, axis=None)), -int(np.minimum.reduce(a, axis=None)))


@functools.cache
def _blas_libraries() -> tuple:
    """threadpoolctl's controllers of the BLAS libraries loaded (none without threadpoolctl)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return ()
    return tuple(ThreadpoolController().select(user_api="blas").lib_controllers)


# Multiply-adds of a product up to which OpenBLAS runs it on one thread by itself
# (interface/gemm.c: SMP_THRESHOLD_MIN x GEMM_MULTITHREAD_THRESHOLD): a run whose products
# all stay below needs no thread limit set and restored (a tenth of a small model's run).
BLAS_ONE_THREAD_WORK = 65536 * 4


def _product_work(graph: Graph, node: Node) -> int:
    """Multiply-adds of the largest BLAS product one inference of ``node`` makes."""
    w = node.attrs["weight"]
    out = graph.tensors[node.outputs[0]].shape
    if node.op == "conv":
        return math.prod(out[2:]) * math.prod(w.shape[1:]) * (w.shape[0] // node.attrs["group"])
    return math.prod(out[1:-1]) * w.shape[1] * w.shape[0]


class _OneBlasThread:
    """The reference's products are small, and OpenBLAS threads only contend for the cores
    (measured on 2 busy cores: a 64x784x64 product took 81 ms with 2 threads, 0.6 ms with 1).
    Set and restored through the libraries' own calls (a few microseconds; threadpoolctl's
    ``limit`` took tens, as much as a small layer)."""

    def __enter__(self) -> None:
        self.changed = []
        for lib in _blas_libraries():
            threads = lib.get_num_threads()
            if threads != 1:
                lib.set_num_threads(1)
                self.changed.append((lib, threads))

    def __exit__(self, *exc) -> None:
        for lib, threads in self.changed:
            lib.set_num_threads(threads)




class Matrix:
    """A constant integer weight matrix [N, K], with the copies and bounds the exact product
    needs prepared once."""

    def __init__(self, w: np.ndarray):
        self.w = np.asarray(w)
        # The largest |sum_k w[n, k] * x[k]| is at most max|x| * max_n sum_k |w[n, k]|.
        wide = self.w.dtype == object or _bound(self.w) * max(self.w.shape[1], 1) >= 2**62
        self.row_l1 = int(np.abs(self.w.astype(object) if wide else self.w).sum(axis=1).max()
                          if w.size else 0)
        self.small = self.w.dtype != object and self.row_l1 < 2**62

    @functools.cached_property
    def t_f64(self) -> np.ndarray | None:
        return np.ascontiguousarray(self.w.T, np.float64) if self.small else None

    @functools.cached_property
    def t_f32(self) -> np.ndarray | None:
        return np.ascontiguousarray(self.w.T, np.float32) if self.small else None

    @functools.cached_property
    def t_i64(self) -> np.ndarray | None:
        return np.ascontiguousarray(self.w.T, np.int64) if self.small else None


def _exact_matmul(x: np.ndarray, m: Matrix) -> np.ndarray:
    """x [..., K] @ m.w.T, exactly, as fast as the magnitudes allow: float32 or float64 BLAS
    when every partial sum provably fits in 24 or 53 bits, int64 within 62 bits, else Python
    ints."""
    bound = _bound(x) * m.row_l1
    if bound < F32_EXACT and m.small:  # half the bytes of float64, twice the lanes
        return (x.astype(np.float32) @ m.t_f32).astype(np.int64)
    if bound < F64_EXACT and m.small:
        return (x.astype(np.float64, copy=False) @ m.t_f64).astype(np.int64)
    if bound < 2**62 and m.small:
        return x.astype(np.int64, copy=False) @ m.t_i64
    return x.astype(object) @ m.w.T.astype(object)


def _less_zero_point(v: np.ndarray, *zero_points) -> np.ndarray:
    """``v`` less each zero point (scalars; no pass for a zero one)."""
    for zp in zero_points:
        if _nonzero(zp):
            v = v - zp
    return v


def _nonzero(value) -> bool:
    """Whether a scalar or array parameter has a nonzero entry (np.any takes microseconds a
    Python scalar)."""
    return bool(value.any()) if isinstance(value, np.ndarray) else bool(value)


def shift_round(num: np.ndarray, shift, rounding: str) -> np.ndarray:
    """``numerics.round_shift`` (divide by 2**shift, round), with a fast path for int64 input
    and positive shifts: one rounding constant and one arithmetic shift."""
    s = np.asarray(shift, np.int64)
    if num.dtype != np.int64 or not num.size or s.min() <= 0 or s.max() > 62:
        return round_shift(num, shift, rounding)
    top = int(s.max())
    spread = top - int(s.min())
    if _bound(num) >= 2 ** (62 - spread):
        return round_shift(num, shift, rounding)
    if spread:
        num = num << (top - s)  # one shift for every channel; |num| stays below 2**62
    half = 1 << (top - 1)
    if rounding == "half_even":
        return (num + (half - 1) + ((num >> top) & 1)) >> top
    if rounding == "half_up":
        return (num + half) >> top
    if rounding == "floor":
        return num >> top
    return round_shift(num, top, rounding)


def round_floats(x: np.ndarray, rounding: str, out: np.ndarray) -> np.ndarray:
    """``out`` = the floats ``x`` (exact values) rounded to integers by ``rounding``:
    ``half_even``, ``floor`` or ``half_up``. Half up adds 0.5 in float64, in ``x`` itself
    when float64 (in float32 the sum would round first: 0.49999997 + 0.5 is 1.0)."""
    if rounding == "half_even":
        return np.rint(x, out=out)
    if rounding == "floor":
        return np.floor(x, out=out)
    if x.dtype != np.float64:
        x = x.astype(np.float64)
    x += 0.5
    return np.floor(x, out=out)


def _pad(x: np.ndarray, pads, value) -> np.ndarray:
    t, l, b, r = pads
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def _windows(x: np.ndarray, kernel, strides, dilations=(1, 1)) -> np.ndarray:
    """[N, C, OH, OW, kh, kw] view of the (already padded) NCHW input."""
    kh, kw = kernel
    sh, sw = strides
    dh, dw = dilations
    v = np.lib.stride_tricks.sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1),
                                                 axis=(2, 3))
    return v[:, :, ::sh, ::sw, ::dh, ::dw]


def conv(x: np.ndarray, weight: np.ndarray | list[Matrix], bias, *, strides, pads, dilations,
         group, kernel=None):
    """Integer conv of zero-point-free inputs: x [N, C, H, W], weight [M, C/g, kh, kw] (or
    one prepared Matrix per group, with ``kernel`` (kh, kw))."""
    if isinstance(weight, np.ndarray):
        m, _, kh, kw = weight.shape
        weight = [Matrix(wg.reshape(m // group, -1)) for wg in np.split(weight, group)]
    else:
        kh, kw = kernel
    cg = x.shape[1] // group
    if _bound(x) * max(w.row_l1 for w in weight) < F64_EXACT:
        x = x.astype(np.float64)  # im2col copies once, already in the type BLAS takes
    win = _windows(_pad(x, pads, 0), (kh, kw), strides, dilations)
    n, c, oh, ow = win.shape[:4]
    outs = []
    for g, wg in enumerate(weight):
        cols = win[:, g * cg:(g + 1) * cg].transpose(0, 2, 3, 1, 4, 5).reshape(n, oh, ow, -1)
        outs.append(_exact_matmul(cols, wg))
    acc = np.concatenate(outs, axis=-1).transpose(0, 3, 1, 2)
    return acc if bias is None else acc + bias.reshape(1, -1, 1, 1)


_SCRATCH = threading.local()
KEEP_SCRATCH = 1 << 18  # elements of the largest working array kept between calls


def _scratch(name: str, shape: tuple, dtype) -> np.ndarray:
    """A working array of this thread's, reused from call to call: a fresh one past malloc's
    mmap threshold is new pages to fault in each time (half of a small conv's run)."""
    size = math.prod(shape)
    key = (name, dtype)  # the type itself (np.float32, ...): np.dtype(...).str is slower
    buf = getattr(_SCRATCH, "arrays", None)
    if buf is None:
        buf = _SCRATCH.arrays = {}
    if size > KEEP_SCRATCH:
        return np.empty(shape, dtype)
    if key not in buf or buf[key].size < size:
        buf[key] = np.empty(size, dtype)
    return buf[key][:size].reshape(shape)
