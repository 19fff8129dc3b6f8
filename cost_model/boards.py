"""FPGA boards: the resources and clock a design is estimated against.

A board is one YAML file with flat keys (see ``boards/pynq-z2.yaml``)::

    name: pynq-z2
    family: xilinx7          # xilinx7 | ecp5 | ice40
    part: xc7z020clg400-1
    lut: 53200
    ff: 106400
    dsp: 220
    bram: 280                # block RAMs, counted in the family's unit
    bram_kbits: 18           # the size of one such block
    clock_hz: 100000000

The shipped boards are package data of ``qfab.boards``; ``load_board`` takes one of their
names or a path to a file of the same form.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import qfab.boards
import yaml

from qfab.errors import QfabError

FAMILIES = ("xilinx7", "ecp5", "ice40")
DEFAULT_BOARD = "pynq-z2"

# The name of one block RAM in each family, as `Estimate.bram_unit` reports it.
BRAM_UNIT = {"xilinx7": "RAMB18", "ecp5": "DP16KD", "ice40": "SB_RAM40_4K"}

_BOARD_DIR = Path(qfab.boards.__file__).parent
_INT_KEYS = ("lut", "ff", "dsp", "bram", "bram_kbits", "clock_hz")
_STR_KEYS = ("name", "family", "part")
_OPTIONAL = ("description",)


@dataclass(frozen=True)
class Board:
    """One FPGA board: its device's resources and the clock its designs run at.

    Parameters
    ----------
    name : str
        Short name used on the command line (``pynq-z2``).
    family : str
        ``"xilinx7"``, ``"ecp5"`` or ``"ice40"``: selects the cost model and Yosys flow.
    part : str
        Device part number.
    lut, ff, dsp : int
        Logic cells (LUT6 on 7-series, LUT4 on Lattice), flip-flops and hard multipliers.
    bram : int
        Block RAMs, in units of ``bram_kbits`` each (RAMB18, DP16KD, SB_RAM40_4K).
    bram_kbits : int
        Capacity of one block RAM in Kib.
    clock_hz : int
        Default clock of the accelerator on this board.
    description : str
        A human-readable name.
    """

    name: str
    family: str
    part: str
    lut: int
    ff: int
    dsp: int
    bram: int
    bram_kbits: int
    clock_hz: int
    description: str = ""

    @property
    def bram_unit(self) -> str:
        """The family's block RAM primitive, the unit of ``bram``."""
        return BRAM_UNIT[self.family]


def _known() -> list[str]:
    return sorted(p.stem for p in _BOARD_DIR.glob("*.yaml"))


BOARDS: tuple[str, ...] = tuple(_known())


def _parse(data: object, where: str) -> Board:
    if not isinstance(data, dict):
        raise QfabError(f"{where}: expected a mapping of keys, got {type(data).__name__}")
    unknown = sorted(set(data) - set(_INT_KEYS + _STR_KEYS + _OPTIONAL))
    if unknown:
        raise QfabError(f"{where}: unknown key {unknown[0]!r}")
    fields: dict[str, object] = {}
    for key in _STR_KEYS + _INT_KEYS:
        if key not in data:
            raise QfabError(f"{where}: missing key {key!r}")
        value = data[key]
        if key in _STR_KEYS:
            if not isinstance(value, str) or not value:
                raise QfabError(f"{where}: key {key!r} must be a non-empty string, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise QfabError(f"{where}: key {key!r} must be a non-negative integer, got {value!r}")
        fields[key] = value
    if fields["family"] not in FAMILIES:
        raise QfabError(f"{where}: key 'family' must be one of {', '.join(FAMILIES)}, "
                        f"got {fields['family']!r}")
    for key in ("lut", "ff", "bram_kbits", "clock_hz"):
        if fields[key] == 0:
            raise QfabError(f"{where}: key {key!r} must be positive, got 0")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise QfabError(f"{where}: key 'description' must be a string, got {description!r}")
    return Board(description=description, **fields)  # type: ignore[arg-type]


def load_board(name_or_path: str | os.PathLike | Board | None = None) -> Board:
    """Load a board by its short name (``"pynq-z2"``) or from a YAML file path.

    ``None`` gives ``DEFAULT_BOARD``; a ``Board`` is returned as is. Raises ``QfabError`` for
    an unknown name (listing the known ones), an unreadable file, or a malformed key.
    """
    if isinstance(name_or_path, Board):
        return name_or_path
    if name_or_path is None:
        name_or_path = DEFAULT_BOARD
    text = os.fspath(name_or_path)
    path = Path(text)
    if path.suffix not in (".yaml", ".yml") and os.sep not in text:
        path = _BOARD_DIR / f"{text}.yaml"
        if not path.is_file():
            raise QfabError(f"unknown board {text!r} (known: {', '.join(_known())}; "
                            f"or give a path to a board .yaml)")
    try:
        raw = path.read_text()
    except OSError as e:
        raise QfabError(f"board file {text}: {e.strerror or e}") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise QfabError(f"board file {path}{line}: {problem}") from None
    return _parse(data, f"board file {path}")
