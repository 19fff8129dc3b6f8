"""Lets the number-format tests import their shared helpers (``minifloat_cases``) under any
pytest import mode."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
