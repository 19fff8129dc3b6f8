"""Every block of the folded digits accelerator (`qfab compile --board ulx3s-85f --max-pe 4
--max-simd 8`) placed and routed alone in a register ring
(:mod:`qfab.cost_model.register_ring`) on the LFE5U-85F (speed grade 6): routed Fmax (the
registers after block RAM reads moved into the block RAM, as `qfab build` does), the
estimate before place and route (:mod:`qfab.cost_model.fmax`), and nextpnr's slowest path.
A whole design adds routing between blocks, so each block should route well above the clock
the design aims at (150 MHz). Routes are cached by content (:func:`qfab.cost_model.
fmax_check.route`, seed 1): only a block that changed pays for its route, 1-5 minutes.

    python -m bench ecp5_blocks
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "digits" / "digits_int8.onnx"
CELLS = ("LUT4", "CCU2C", "TRELLIS_FF", "DP16KD", "MULT18X18D")


def _cell(name: str) -> str:
    return name.removeprefix("block.").split("$")[0].rstrip("_.") or name


def _ends(critical: dict | None) -> str:
    if not critical:
        return "-"
    return (f"{_cell(critical['from'])} -> {_cell(critical['to'])} "
            f"({critical['logic_ns']:.1f} logic, {critical['routing_ns']:.1f} routing)")


def run() -> list[str]:
    from qfab.compiler.backend.accelerator import make_block
    from qfab.cost_model.fmax_check import route
    from qfab.cost_model.register_ring import ringed_verilog

    import qfab

    design = qfab.compile(MODEL, board="ulx3s-85f", max_pe=4, max_simd=8)
    lines = ["| block | routed MHz | estimated MHz | slowest path (ns) | cells |",
             "|---|---|---|---|---|"]
    seen: set[str] = set()
    for stage in design.plan.stages:
        for spec in stage.blocks:
            name = f"{stage.name} ({spec.kind})"
            verilog = ringed_verilog(make_block(spec))
            if verilog in seen:  # a block the table has (a slice of the same width)
                continue
            seen.add(verilog)
            routed = route(verilog, "ulx3s-85f", name=name, outreg=True)
            counts: dict[str, int] = {}
            for cell in routed.netlist["modules"]["top"]["cells"].values():
                counts[cell["type"]] = counts.get(cell["type"], 0) + 1
            cells = ", ".join(f"{counts[c]:,} {c}" for c in CELLS if counts.get(c))
            lines.append(f"| {name} | {routed.routed_mhz:.1f} | {routed.estimate_mhz():.1f} | "
                         f"{_ends(routed.critical)} | {cells} |")
    return lines
