"""XNOR-popcount unit against the multiplier MVU on the same binary layer, in Yosys.

Both units take the same weight bits, the same -1/+1 activation codes (``signed(2)``, a
bipolar threshold's) and the same folding; the multiplier MVU decodes both operands and
multiplies them. Printed per layer and family: LUTs, FFs and BRAMs of each (Yosys results
are cached, so a second run only reads them)::

    python -m bench xnor_luts
"""

from __future__ import annotations

import numpy as np

# (MH, MW, PE, SIMD): a small layer, binary TFC's hidden layer, a wide one
LAYERS = ((16, 32, 2, 4), (64, 64, 4, 8), (64, 256, 4, 16))


def run() -> list[str]:
    from qfab.cost_model.yosys import FAMILIES, synthesize_component
    from qfab.hw.multipliers import BipolarDecoder, Multiplier, shape_for_range
    from qfab.hw.mvu import MatrixVectorUnit, dot_product_bounds
    from qfab.hw.xnor_mvu import BipolarCodeDecoder, XnorPopcountUnit

    lines = ["layer           family   LUT xnor / mult  (fewer)   FF xnor / mult   BRAM"]
    for mh, mw, pe, simd in LAYERS:
        bits = np.random.default_rng(mh * mw).integers(0, 1, (mh, mw), endpoint=True)
        mult = Multiplier(BipolarCodeDecoder(2), BipolarDecoder())
        params = dict(weights=bits, acc_shape=shape_for_range(*dot_product_bounds(bits, mult)),
                      pe=pe, simd=simd, multiplier=mult)
        for family in FAMILIES:
            x = synthesize_component(XnorPopcountUnit(**params), family)
            m = synthesize_component(MatrixVectorUnit(**params), family)
            lines.append(f"{mh}x{mw} p{pe}s{simd}".ljust(16) + f"{family:8} {x.lut:5} / "
                         f"{m.lut:<5} ({1 - x.lut / m.lut:4.0%})   {x.ff:4} / {m.ff:<5}   "
                         f"{x.bram} / {m.bram}")
    return lines
