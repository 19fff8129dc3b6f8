"""Products in LUTs against products in DSPs on ECP5: the digits CNN's conv2 matrix-vector
unit and its requantizer as `qfab compile --board ulx3s-85f --max-pe 4 --max-simd 8` builds
them (byte products as partial products in the adder tree, the requantizer's one scale in
shifts and adds), and the same blocks with ``lut_products`` / ``shift_add`` off (Yosys maps
their products to MULT18X18D), each placed and routed alone in a register ring
(:mod:`qfab.cost_model.register_ring`) on the LFE5U-85F (speed grade 6) by
:func:`qfab.cost_model.fmax_check.route` (nextpnr-ecp5 from YoWASP, seed 1; cached, so only a
first run pays some five minutes a block)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "digits" / "digits_int8.onnx"
CELLS = ("LUT4", "CCU2C", "TRELLIS_FF", "MULT18X18D")
# (stage, block kind, the parameter that puts its products in LUTs)
BLOCKS = [("conv2", "mvu", "lut_products"),
          ("conv2_out_QuantizeLinear", "requant", "shift_add")]


def _unit(kind: str, params: dict):
    from qfab.hw.mvu import MatrixVectorUnit
    from qfab.hw.requant import Requantizer

    return (MatrixVectorUnit if kind == "mvu" else Requantizer)(**params)


def run() -> list[str]:
    from qfab.cost_model.fmax_check import route
    from qfab.cost_model.register_ring import ringed_verilog

    import qfab

    design = qfab.compile(MODEL, board="ulx3s-85f", max_pe=4, max_simd=8)
    specs = {(s.name, b.kind): b.params for s in design.plan.stages for b in s.blocks}
    lines = ["| block | products | latency | routed MHz | estimated MHz | cells |",
             "|---|---|---|---|---|---|"]
    for stage, kind, switch in BLOCKS:
        for in_luts in (True, False):
            params = dict(specs[(stage, kind)], **{switch: in_luts})
            unit = _unit(kind, params)
            routed = route(ringed_verilog(unit), "ulx3s-85f",
                           name=f"{stage} {kind}")
            counts: dict[str, int] = {}
            for cell in routed.netlist["modules"]["top"]["cells"].values():
                counts[cell["type"]] = counts.get(cell["type"], 0) + 1
            cells = ", ".join(f"{counts[c]:,} {c}" for c in CELLS if counts.get(c))
            lines.append(f"| {stage} ({kind}) | {'LUTs' if in_luts else 'DSPs'} | "
                         f"{unit.latency} | {routed.routed_mhz:.1f} | "
                         f"{routed.estimate_mhz():.1f} | {cells} |")
    return lines
