"""The folded MVU's multiply-accumulate lane against a hand-written minimal ``acc += a * b``
of the same widths (bench/_minimal_mac.py), synthesized by the same Yosys with every product
in LUTs (``-nodsp`` on xilinx7 and ECP5; iCE40 without ``-dsp``), side by side.

A lane's LUTs are what one more PE adds: ``(LUT(PE = 2k) - LUT(PE = k)) / k`` at SIMD 1, its
multiplier, product register, accumulator and output word. The unit's shared part (weight
memory, folding counters, handshake) is left out by the difference; the weights are in block
RAM in both units (deep enough: MW = 512), so their ROM adds no LUTs a lane. Both units are
also shown whole: the shared part is what a one-lane unit pays over the minimal MAC.
"""

from __future__ import annotations

import numpy as np

FAMILIES = ("xilinx7", "ecp5", "ice40")
# jet tagger's widths: u6 activations, s6 weights, a 14-bit accumulator; 8-bit as digits'
WIDTHS = [(6, 6, 14), (8, 8, 20)]
MH, MW, PE = 16, 512, 4


def _unit(in_bits: int, weight_bits: int, acc_bits: int, pe: int):
    from amaranth.hdl import signed, unsigned
    from qfab.hw.mvu import MatrixVectorUnit

    half = 1 << (weight_bits - 1)
    weights = np.random.default_rng(1).integers(-half, half, size=(MH, MW))
    return MatrixVectorUnit(weights=weights, in_shape=unsigned(in_bits),
                            weight_shape=signed(weight_bits), acc_shape=signed(acc_bits),
                            pe=pe, simd=1)


def lane_figures(family: str, in_bits: int, weight_bits: int, acc_bits: int) -> dict:
    """LUTs of one lane (the difference of two units), of the minimal MAC, and of the units."""
    from amaranth.hdl import signed, unsigned
    from qfab.cost_model.yosys import synthesize_component

    from bench._minimal_mac import MinimalMac

    narrow = synthesize_component(_unit(in_bits, weight_bits, acc_bits, PE), family, dsp=False)
    wide = synthesize_component(_unit(in_bits, weight_bits, acc_bits, 2 * PE), family,
                                dsp=False)
    minimal = synthesize_component(MinimalMac(a_shape=unsigned(in_bits),
                                              b_shape=signed(weight_bits),
                                              acc_shape=signed(acc_bits)), family, dsp=False)
    return dict(lane=(wide.lut - narrow.lut) / PE, minimal=minimal.lut,
                lane_ff=(wide.ff - narrow.ff) / PE, minimal_ff=minimal.ff,
                narrow=narrow, wide=wide)


def run() -> list[str]:
    lines = [f"MVU {MH}x{MW}, SIMD 1, lane = (LUT(PE {2 * PE}) - LUT(PE {PE})) / {PE}; "
             "products in LUTs (no DSP)",
             f"{'family':<8} {'widths':<14} {'lane LUT':>8} {'minimal LUT':>11} {'ratio':>6} "
             f"{'lane FF':>7} {'min FF':>6} | unit PE {PE}: LUT FF BRAM | PE {2 * PE}"]
    for family in FAMILIES:
        for a, w, acc in WIDTHS:
            f = lane_figures(family, a, w, acc)
            n, d = f["narrow"], f["wide"]
            lines.append(f"{family:<8} u{a} x s{w} -> s{acc:<3} {f['lane']:>8.1f} "
                         f"{f['minimal']:>11} {f['lane'] / f['minimal']:>6.2f} "
                         f"{f['lane_ff']:>7.1f} {f['minimal_ff']:>6} | {n.lut} {n.ff} {n.bram}"
                         f" | {d.lut} {d.ff} {d.bram}")
    lines.append("target: a lane at most 1.15x the minimal MAC's LUTs")
    return lines


if __name__ == "__main__":
    print("\n".join(run()))
