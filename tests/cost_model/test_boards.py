"""Board files: every shipped board loads, and malformed files fail in one line naming the key."""

from pathlib import Path

import pytest
from qfab.cost_model.boards import BOARDS, DEFAULT_BOARD, Board, load_board

from qfab.errors import QfabError

GOOD = """\
name: mine
family: ecp5
part: LFE5U-25F
lut: 24288
ff: 24288
dsp: 28
bram: 56
bram_kbits: 18
clock_hz: 50000000
"""


def test_shipped_boards():
    assert set(BOARDS) >= {"arty-a7-35t", "pynq-z2", "ulx3s-85f", "icebreaker"}
    assert DEFAULT_BOARD in BOARDS
    figures = {b: load_board(b) for b in BOARDS}
    assert (figures["pynq-z2"].lut, figures["pynq-z2"].dsp, figures["pynq-z2"].bram) == \
        (53200, 220, 280)
    assert (figures["arty-a7-35t"].lut, figures["arty-a7-35t"].bram) == (20800, 100)
    assert figures["ulx3s-85f"].family == "ecp5" and figures["ulx3s-85f"].dsp == 156
    assert figures["icebreaker"].family == "ice40" and figures["icebreaker"].bram_kbits == 4
    for name, board in figures.items():
        assert board.name == name
    assert load_board(None) == load_board(DEFAULT_BOARD)


def test_board_from_path(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text(GOOD)
    board = load_board(path)
    assert isinstance(board, Board)
    assert (board.family, board.lut, board.clock_hz, board.bram_unit) == \
        ("ecp5", 24288, 50_000_000, "DP16KD")
    assert load_board(board) is board


def test_unknown_board_lists_known():
    with pytest.raises(QfabError, match="known: .*pynq-z2"):
        load_board("zedboard")


@pytest.mark.parametrize("edit, key", [
    (("ff: 24288", "ff: lots"), "'ff'"),
    (("family: ecp5", "family: stratix"), "'family'"),
    (("dsp: 28\n", ""), "'dsp'"),
    (("lut: 24288", "lut: 0"), "'lut'"),
    (("bram: 56", "bram: 56\nbrams: 3"), "'brams'"),
    (("clock_hz: 50000000", "clock_hz: [1"), "line"),
])
def test_malformed_board_names_key(tmp_path: Path, edit, key):
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace(*edit))
    with pytest.raises(QfabError) as info:
        load_board(path)
    message = str(info.value)
    assert "\n" not in message and key in message and str(path) in message
