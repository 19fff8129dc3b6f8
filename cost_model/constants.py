"""LUTs per unit of each LUT feature (see blocks.py), per family.

Written by ``python -m qfab.cost_model.calibrate --fit`` from Yosys synthesis of the
calibration grid; edit by re-running it, not by hand.
"""

LUT_WEIGHTS = {
    "xilinx7": {"add": 0.3049, "mux": 0.9427, "cmp": 0.6973, "cmpk": 0.2014, "mul": 3.1354,
                "shift": 0.6539, "romw": 2.8929, "ctrl": 0.7173, "block": 3.899},
    "ecp5": {"add": 1.6293, "mux": 1.3914, "cmp": 0.9595, "cmpk": 0.0, "mul": 0.5301,
             "shift": 1.5884, "romw": 2.1391, "ctrl": 2.1622, "block": 1.0873},
    "ice40": {"add": 0.8259, "mux": 1.1188, "cmp": 0.4101, "cmpk": 0.0, "mul": 3.3068,
              "shift": 0.6263, "romw": 0.7384, "ctrl": 1.7958, "block": 0.0},
}
