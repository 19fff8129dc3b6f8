"""Cost model: LUT, FF, DSP, BRAM and cycles of a plan on a board, checked against Yosys.

    from qfab.cost_model import estimate, load_board
    est = estimate(design_or_plan, "pynq-z2")
"""

from qfab.cost_model.boards import BOARDS, DEFAULT_BOARD, Board, load_board
from qfab.cost_model.estimate import Estimate, StageEstimate, estimate

__all__ = ["BOARDS", "DEFAULT_BOARD", "Board", "Estimate", "StageEstimate", "estimate",
           "load_board"]
