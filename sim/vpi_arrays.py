"""A range of an unpacked Verilog array read or written in one VPI call, from a cocotb test.

cocotb moves one array element per call (several microseconds each, most of a co-simulation's
time when the design takes a beat every few cycles). IEEE 1800's ``vpi_get_value_array`` and
``vpi_put_value_array`` move a whole range; cocotb does not wrap them, so this calls them
through ctypes from inside the simulator process. The simulator binary must export them:
qfab's Verilator builds link with ``--export-dynamic-symbol`` for both
(:mod:`qfab.sim.verilator_build`).

Values travel in ``vpiRawTwoStateVal`` form: each element is ``ceil(width / 8)`` bytes, least
significant byte first, the elements back to back.
Only the standard library is imported here: this runs in the simulator's Python.
"""

from __future__ import annotations

import ctypes

__all__ = ["VpiArray"]

VPI_RAW_TWO_STATE_VAL = 17  # vpi_user.h: vpiRawTwoStateVal


class _ArrayValue(ctypes.Structure):
    # s_vpi_arrayvalue: the value union holds only pointers, so one pointer stands for it.
    _fields_ = [("format", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("value", ctypes.c_void_p)]


class _ErrorInfo(ctypes.Structure):
    _fields_ = [("state", ctypes.c_int32), ("level", ctypes.c_int32),
                ("message", ctypes.c_char_p), ("product", ctypes.c_char_p),
                ("code", ctypes.c_char_p), ("file", ctypes.c_char_p), ("line", ctypes.c_int32)]


def _simulator() -> ctypes.CDLL:
    sim = ctypes.CDLL(None)  # the simulator executable and what it loaded
    sim.vpi_handle_by_name.restype = ctypes.c_void_p
    sim.vpi_handle_by_name.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    sim.vpi_chk_error.restype = ctypes.c_int32
    sim.vpi_chk_error.argtypes = [ctypes.POINTER(_ErrorInfo)]
    for name in ("vpi_get_value_array", "vpi_put_value_array"):
        try:
            function = getattr(sim, name)
        except AttributeError:
            raise RuntimeError(f"the simulator does not export {name} (not a qfab build?)") \
                from None
        function.restype = None
        function.argtypes = [ctypes.c_void_p, ctypes.POINTER(_ArrayValue),
                             ctypes.POINTER(ctypes.c_int32), ctypes.c_uint32]
    return sim


class VpiArray:
    """One unpacked array of the design, by its full VPI name, with elements ``width`` bits wide.

    Parameters
    ----------
    path : str
        The array's hierarchical name, ``"cosim_top.in_mem"`` say.
    width : int
        Bits of one element.
    """

    def __init__(self, path: str, width: int) -> None:
        self._sim = _simulator()
        self._handle = self._sim.vpi_handle_by_name(path.encode(), None)
        if not self._handle:
            raise RuntimeError(f"no array {path!r} visible through VPI")
        self.path = path
        self.element_bytes = (width + 7) // 8

    def _check(self, what: str) -> None:
        info = _ErrorInfo()
        if self._sim.vpi_chk_error(ctypes.byref(info)):
            message = (info.message or b"").decode(errors="replace").strip()
            raise RuntimeError(f"{what} of {self.path}: {message}")

    def read(self, first: int, count: int) -> bytes:
        """Elements ``first .. first + count - 1`` (going round past the last one), packed as
        the module docstring says."""
        if count <= 0:
            return b""
        value = _ArrayValue(VPI_RAW_TWO_STATE_VAL, 0, None)
        index = ctypes.c_int32(first)
        # At least two elements: Verilator 5.048 sizes its buffer for a read of one 1-byte
        # element at zero bytes (and then writes that byte into it). Rings hold two or more.
        self._sim.vpi_get_value_array(self._handle, ctypes.byref(value), ctypes.byref(index),
                                      max(count, 2))
        self._check("vpi_get_value_array")
        return ctypes.string_at(value.value, count * self.element_bytes)

    def write(self, first: int, data: bytes) -> None:
        """Write whole elements from ``data`` starting at element ``first``."""
        count, rest = divmod(len(data), self.element_bytes)
        if rest:
            raise ValueError(f"{len(data)} bytes are no whole number of "
                             f"{self.element_bytes}-byte elements")
        buffer = ctypes.create_string_buffer(data, len(data))
        value = _ArrayValue(VPI_RAW_TWO_STATE_VAL, 0, ctypes.cast(buffer, ctypes.c_void_p))
        index = ctypes.c_int32(first)
        self._sim.vpi_put_value_array(self._handle, ctypes.byref(value), ctypes.byref(index),
                                      count)
        self._check("vpi_put_value_array")
