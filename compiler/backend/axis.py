"""``qfab compile --wrapper axis``: ``axis.v``, the accelerator behind AXI4-Stream ports
(:class:`qfab.hw.axis.AxisWrapper`, top ``qfab_axis``), added to a written design folder."""

from __future__ import annotations

import os
from pathlib import Path

from qfab.output_files import write_output_text

AXIS_FILE = "axis.v"
AXIS_TOP = "qfab_axis"


def axis_verilog(design) -> str:
    """The Verilog of ``design``'s accelerator wrapped in AXI4-Stream ports."""
    from qfab.hw._verilog import convert
    from qfab.hw.axis import AxisWrapper

    wrapper = AxisWrapper(design.accelerator(), out_beats=design.plan.out_beats)
    return convert(wrapper, name=AXIS_TOP, emit_src=False)


def write_axis(design, out_dir: str | os.PathLike) -> Path:
    """Write ``axis.v`` into the design folder ``out_dir`` and give its core file the
    ``axis`` targets; returns the path of ``axis.v``."""
    from qfab.compiler.backend.fusesoc import CORE_FILE, core_file

    out = Path(out_dir)
    path = out / AXIS_FILE
    write_output_text(path, axis_verilog(design))
    write_output_text(out / CORE_FILE, core_file(Path(str(design.model)).stem,
                                        soc=(out / "soc.v").is_file(), axis=True))
    if AXIS_FILE not in design.files:
        design.files = sorted([*design.files, AXIS_FILE])
    return path
