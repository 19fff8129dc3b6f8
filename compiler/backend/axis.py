"""``qfab compile --wrapper axis|axilite``: a wrapper top added to a written design folder.

``axis`` writes ``axis.v``, the accelerator behind AXI4-Stream ports
(:class:`qfab.hw.axis.AxisWrapper`, top ``qfab_axis``); ``axilite`` writes ``axilite.v``, the
accelerator with its RAM and streamer driven by a host over AXI4-Lite, without the RV32I core
(:class:`qfab.hw.soc.axilite.AxiLiteAccelerator`, top ``qfab_axilite``).
"""

from __future__ import annotations

import os
from pathlib import Path

from qfab.output_files import write_output_text

AXIS_FILE = "axis.v"
AXIS_TOP = "qfab_axis"
AXILITE_FILE = "axilite.v"
AXILITE_TOP = "qfab_axilite"
# --wrapper name -> (file, top module).
WRAPPERS = {"axis": (AXIS_FILE, AXIS_TOP), "axilite": (AXILITE_FILE, AXILITE_TOP)}


def axis_verilog(design) -> str:
    """The Verilog of ``design``'s accelerator wrapped in AXI4-Stream ports."""
    from qfab.hw._verilog import convert
    from qfab.hw.axis import AxisWrapper

    wrapper = AxisWrapper(design.accelerator(), out_beats=design.plan.out_beats)
    return convert(wrapper, name=AXIS_TOP, emit_src=False)


def axilite_verilog(design) -> str:
    """The Verilog of ``design``'s accelerator, RAM and streamer behind an AXI4-Lite port."""
    from qfab.hw._verilog import convert
    from qfab.hw.soc.axilite import AxiLiteAccelerator
    from qfab.hw.soc.memory import compact_zero_init

    return compact_zero_init(convert(AxiLiteAccelerator(design.accelerator()),
                                     name=AXILITE_TOP, emit_src=False))


def write_wrapper(design, out_dir: str | os.PathLike, wrapper: str) -> Path:
    """Write the ``wrapper`` top (a key of :data:`WRAPPERS`) into the design folder
    ``out_dir`` and give its core file that top's targets; returns the Verilog's path."""
    from qfab.compiler.backend.fusesoc import CORE_FILE, core_file

    file_name, _ = WRAPPERS[wrapper]
    verilog = {"axis": axis_verilog, "axilite": axilite_verilog}[wrapper]
    out = Path(out_dir)
    path = out / file_name
    write_output_text(path, verilog(design))
    write_output_text(out / CORE_FILE, core_file(Path(str(design.model)).stem,
                                        soc=(out / "soc.v").is_file(), wrappers=(wrapper,)))
    if file_name not in design.files:
        design.files = sorted([*design.files, file_name])
    return path
