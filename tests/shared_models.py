"""Where the real quantized models of ``shared/models`` are: beside the checkout, or, for a
clone elsewhere on this machine, at ``/work/shared/models``; ``$QFAB_SHARED_MODELS`` overrides
both."""

import os
from pathlib import Path

_CANDIDATES = [Path(__file__).resolve().parents[2] / "shared" / "models",
               Path("/work/shared/models")]
SHARED = Path(os.environ["QFAB_SHARED_MODELS"]) if os.environ.get("QFAB_SHARED_MODELS") \
    else next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0])
