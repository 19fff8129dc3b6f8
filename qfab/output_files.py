"""Every file or folder a command writes is built under a temporary name beside its target
and renamed into place: a failed run leaves nothing half written, and the next run into the
same target removes what a killed run left; a target that cannot be written (a read-only or
full disk, a file where a folder should be) is a QfabError naming it. What is written gets
the permissions the umask gives, as if created in place (tempfile makes its files 0600 and
its folders 0700)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from qfab.errors import QfabError

# A temporary name is ".TARGET.qfab-tmp-HOST-PID-RANDOM": the host and process that made it
# tell a killed run's leftovers from a running one's work in progress.
_MARK = ".qfab-tmp-"


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; set it straight back
    os.umask(mask)
    return mask


def _prefix(target: Path) -> str:
    return f".{target.name}{_MARK}{socket.gethostname()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale(target: Path) -> list[Path]:
    """Remove the temporaries of ``target`` that runs on this host left when killed (their
    process is gone); returns what was removed."""
    if os.name != "posix" or not target.parent.is_dir():
        return []
    prefix = _prefix(target)
    removed = []
    for entry in target.parent.iterdir():
        if not entry.name.startswith(prefix):
            continue
        pid = entry.name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _temporary_name(target: Path) -> str:
    return f"{_prefix(target)}{os.getpid()}-"


# Errors of the body writing a temporary that are the file system's, not a bug's.
_FULL_OR_READ_ONLY = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES}


@contextlib.contextmanager
def _writing(out: Path, errnos: set[int] | None = None) -> Iterator[None]:
    """An OSError (of ``errnos``, or any) as the user error of not being able to write."""
    try:
        yield
    except OSError as e:
        if errnos is not None and e.errno not in errnos:
            raise
        where = f" ({e.filename})" if e.filename and str(e.filename) != str(out) else ""
        raise QfabError(f"cannot write {out}: {e.strerror or e}{where}") from None


@contextlib.contextmanager
def output_folder(target: str | os.PathLike) -> Iterator[Path]:
    """An empty folder to fill; when the block ends without an exception it replaces
    ``target`` (an existing ``target`` is removed only then), else it is removed."""
    out = Path(target)
    with _writing(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(out)
        tmp = Path(tempfile.mkdtemp(prefix=_temporary_name(out), dir=out.parent))
    try:
        with _writing(out, _FULL_OR_READ_ONLY):
            yield tmp
        with _writing(out):
            tmp.chmod(0o777 & ~_umask())
            if out.exists():
                # Move the old folder aside first: a rename cannot replace a non-empty one.
                old = Path(tempfile.mkdtemp(prefix=_temporary_name(out), dir=out.parent))
                os.replace(out, old / out.name)
                os.replace(tmp, out)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def output_file(target: str | os.PathLike) -> Iterator[IO[bytes]]:
    """A binary file open for writing; when the block ends without an exception it replaces
    ``target``, else it is removed."""
    out = Path(target)
    with _writing(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(out)
        fd, tmp = tempfile.mkstemp(prefix=_temporary_name(out), dir=out.parent)
    try:
        with _writing(out, _FULL_OR_READ_ONLY), os.fdopen(fd, "wb") as f:
            yield f
        with _writing(out):
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_output_text(target: str | os.PathLike, text: str) -> None:
    """``text`` (UTF-8) into ``target`` through :func:`output_file`."""
    with output_file(target) as f:
        f.write(text.encode())
