"""Lets every test import the helpers at the top of tests/ (``shared_models``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
