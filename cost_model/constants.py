"""LUTs per unit of each LUT feature (see blocks.py), per family.

Written by ``python -m qfab.cost_model.calibrate --fit`` from Yosys synthesis of the
calibration grid; edit by re-running it, not by hand.
"""

LUT_WEIGHTS = {
    "xilinx7": {"add": 0.0, "mux": 1.0253, "cmp": 0.7234, "cmpk": 0.3399, "mul": 3.6428,
                "shift": 0.8271, "romw": 3.7165, "romc": 0.1452, "ctrl": 0.8222, "block": 3.0677},
    "ecp5": {"add": 1.6712, "mux": 1.3982, "cmp": 0.9394, "cmpk": 0.0, "mul": 0.3785,
             "shift": 1.5932, "romw": 0.6825, "romc": 0.037, "ctrl": 2.1576, "block": 1.0385},
    "ice40": {"add": 0.8398, "mux": 1.1362, "cmp": 0.19, "cmpk": 0.0, "mul": 3.2803,
              "shift": 0.6393, "romw": 0.1971, "romc": 0.8481, "ctrl": 1.8546, "block": 0.0},
}
