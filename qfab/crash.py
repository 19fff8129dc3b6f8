"""The CLI's last resort: an exception that is not a QfabError is a bug in qfab. Its
traceback goes to a file, and the user gets one line naming that file (exit status 3), so a
crash is never read as exit 1, "the hardware disagrees with the reference"."""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

import qfab
from qfab.cache_paths import cache_root


def crash_dir() -> Path:
    """The cache root (:func:`qfab.cache_paths.cache_root`)."""
    return cache_root()


def write_crash_report(exc: BaseException, argv: list[str]) -> Path | None:
    """Write what a bug report needs (the command, versions, the traceback) to a new
    ``crash-*.txt`` in :func:`crash_dir` (else the temp folder); returns its path, or None
    when neither can be written."""
    text = "".join([
        f"qfab {qfab.__version__} crashed at {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n",
        f"command: qfab {' '.join(argv)}\n",
        f"working folder: {os.getcwd()}\n",
        f"python {platform.python_version()} on {platform.platform()}\n\n",
        *traceback.format_exception(exc),
    ])
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for folder in (crash_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, path = tempfile.mkstemp(prefix=f"crash-{stamp}-", suffix=".txt", dir=folder)
            with os.fdopen(fd, "w") as f:
                f.write(text)
            return Path(path)
        except OSError:
            continue
    return None


def report_crash(command: str, exc: BaseException, argv: list[str]) -> int:
    """Tell the user in one line on stderr where the traceback went; returns exit status 3."""
    path = write_crash_report(exc, argv)
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    what = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    if path is None:
        traceback.print_exception(exc, file=sys.stderr)
        where = "traceback above; no folder was writable for it"
    else:
        where = f"traceback in {path}"
    print(f"qfab {command}: internal error (a bug in qfab, please report it): {what}; {where}",
          file=sys.stderr)
    return 3
