"""LUTs per unit of each LUT feature (see features.py), per family.

Written by ``python -m qfab.cost_model.calibrate --fit`` from Yosys synthesis of the
calibration grid; edit by re-running it, not by hand.
"""

LUT_WEIGHTS = {
    "xilinx7": {"add": 0.0, "mux": 1.0038, "cmp": 0.7486, "cmpk": 0.3681, "mul": 0.0,
                "macc": 1.1772, "shift": 0.836, "romw": 3.6609, "romc": 2.4808, "ctrl": 1.0049,
                "block": 2.5301, "stage": 15.6923},
    "ecp5": {"add": 1.9673, "mux": 0.7916, "cmp": 0.753, "cmpk": 0.0, "mul": 0.0, "macc": 0.0,
             "shift": 1.4207, "romw": 0.6457, "romc": 0.5571, "ctrl": 2.6309, "block": 3.4717,
             "stage": 19.5415},
    "ice40": {"add": 0.7072, "mux": 1.0369, "cmp": 0.4105, "cmpk": 0.1191, "mul": 2.9088,
              "macc": 1.2245, "shift": 0.7049, "romw": 0.2522, "romc": 1.2355, "ctrl": 2.0555,
              "block": 0.0, "stage": 15.9362},
}
