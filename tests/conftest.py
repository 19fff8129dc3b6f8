"""Lets every test import the helpers at the top of tests/ (``shared_models``), and keeps
progress lines off stderr."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
# Progress lines would make what a command writes on stderr depend on how loaded the machine
# is; tests/sim/test_progress.py turns them back on.
os.environ.setdefault("QFAB_PROGRESS", "0")
