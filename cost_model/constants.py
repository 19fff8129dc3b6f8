"""LUTs per unit of each LUT feature (see blocks.py), per family.

Written by ``python -m qfab.cost_model.calibrate --fit`` from Yosys synthesis of the
calibration grid; edit by re-running it, not by hand.
"""

LUT_WEIGHTS = {
    "xilinx7": {"add": 1.0, "mux": 0.5, "cmp": 0.5, "mul": 0.6, "shift": 0.5, "ctrl": 2.0,
                "block": 4.0},
    "ecp5": {"add": 1.0, "mux": 1.0, "cmp": 1.0, "mul": 1.2, "shift": 1.0, "ctrl": 2.0,
             "block": 4.0},
    "ice40": {"add": 1.0, "mux": 1.0, "cmp": 1.0, "mul": 1.2, "shift": 1.0, "ctrl": 2.0,
              "block": 4.0},
}
