"""Lets every test import the helpers at the top of tests/ (``shared_models``), keeps
progress lines off stderr and converts Verilog afresh."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
# Progress lines would make what a command writes on stderr depend on how loaded the machine
# is; tests/sim/test_progress.py turns them back on.
os.environ.setdefault("QFAB_PROGRESS", "0")
# Generated Verilog is made afresh in every test (a test may count on its conversion running);
# tests/backend/test_verilog_cache.py turns the cache on.
os.environ.setdefault("QFAB_VERILOG_CACHE", "0")
