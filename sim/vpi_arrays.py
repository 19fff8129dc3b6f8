"""A range of an unpacked Verilog array read or written in one call, from a cocotb test.

cocotb moves one array element per VPI call (several microseconds each, most of a
co-simulation's time when the design takes a beat every few cycles). IEEE 1800's
``vpi_get_value_array`` and ``vpi_put_value_array`` move a whole range, but Verilator copies
them a byte at a time; qfab's simulator main (``cosim_main.cpp``) exports
``qfab_array_copy``, which moves the same bytes an element at a time (one ``memcpy``), and this
calls it through ctypes from inside the simulator process. The simulator binary must export it:
qfab's Verilator builds link with ``--export-dynamic-symbol`` for it
(:mod:`qfab.sim.verilator_build`).

Values travel in ``vpiRawTwoStateVal`` form: each element is ``ceil(width / 8)`` bytes, least
significant byte first, the elements back to back.
Only the standard library is imported here: this runs in the simulator's Python.
"""

from __future__ import annotations

import ctypes

__all__ = ["VpiArray"]


def _copy_function():
    sim = ctypes.CDLL(None)  # the simulator executable and what it loaded
    try:
        function = sim.qfab_array_copy
    except AttributeError:
        raise RuntimeError("the simulator does not export qfab_array_copy (not a qfab build?)") \
            from None
    function.restype = ctypes.c_int
    function.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint32,
                         ctypes.c_uint32, ctypes.c_void_p]
    return function


class VpiArray:
    """One unpacked array of the design, by its full name, with elements ``width`` bits wide:
    one dimension, indexed from 0.

    Parameters
    ----------
    path : str
        The array's hierarchical name, ``"cosim_top.in_mem"`` say.
    width : int
        Bits of one element.
    """

    def __init__(self, path: str, width: int) -> None:
        self._copy = _copy_function()
        scope, _, name = path.rpartition(".")
        self._scope, self._name = scope.encode(), name.encode()
        self.path = path
        self.element_bytes = (width + 7) // 8
        self._call(0, 0, 0, None)  # is the array there?

    def _call(self, write: int, first: int, count: int, data) -> None:
        if self._copy(self._scope, self._name, write, first, count, data):
            raise RuntimeError(f"no array {self.path!r} of one dimension from 0 in the model, "
                               f"or element {first} past its end")

    def read(self, first: int, count: int) -> bytes:
        """Elements ``first .. first + count - 1`` (going round past the last one), packed as
        the module docstring says."""
        if count <= 0:
            return b""
        buffer = ctypes.create_string_buffer(count * self.element_bytes)
        self._call(0, first, count, buffer)
        return buffer.raw

    def write(self, first: int, data: bytes) -> None:
        """Write whole elements from ``data`` starting at element ``first`` (going round past
        the last one)."""
        count, rest = divmod(len(data), self.element_bytes)
        if rest:
            raise ValueError(f"{len(data)} bytes are no whole number of "
                             f"{self.element_bytes}-byte elements")
        self._call(1, first, count, bytes(data))
