"""Progress lines for long work: Verilator builds and runs, the cycle model, the reference on a
large batch, Verilog generation, Yosys.

Work that may take long runs inside :func:`ticking`, which says what is running once it has
taken :data:`FIRST` seconds, then every :data:`EVERY` seconds, and how long it took, through
the ``qfab.progress`` logger; quick work says nothing. Where the lines go is the caller's
choice (:func:`progress_to`): the CLI prints them on stderr (``--quiet`` turns them off) and
``qfab.simulate(progress=...)`` hands them to a callback. ``QFAB_PROGRESS=0`` in the
environment silences both, short of an explicit callback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator

LOGGER = logging.getLogger("qfab.progress")
FIRST = 2.0  # seconds before the first line: quick work says nothing (0: say every step)
EVERY = 5.0  # seconds between lines

#: Where progress lines go: a callable taking one line, False for nowhere, None for the
#: ``qfab.progress`` logger (stderr when the application configured no logging).
Progress = Callable[[str], None] | bool | None


def silenced() -> bool:
    """Whether the environment asks for no progress lines (``QFAB_PROGRESS=0``)."""
    return os.environ.get("QFAB_PROGRESS") == "0"


class _Ticker:
    """One thread of qfab's that says, for every :func:`ticking` block running, what runs when
    its time comes. A block only registers and unregisters (a new thread a block, started and
    joined, cost milliseconds of a loaded machine's scheduling, more than quick work itself);
    the thread sleeps until the earliest line is due and ends after :data:`IDLE` seconds with
    nothing to say."""

    IDLE = 10.0

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.running: dict[int, list] = {}  # id -> [what, start, due, said]
        self.thread: threading.Thread | None = None
        self.wake = 0.0  # when the thread next looks, if it sleeps

    def add(self, key: int, what: str, start: float, due: float, said: bool) -> None:
        with self.lock:
            self.running[key] = [what, start, due, said]
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="qfab-progress",
                                               daemon=True)
                self.thread.start()
            elif due < self.wake:  # sooner than it looks: wake it (only quick FIRSTs do)
                self.lock.notify()

    def remove(self, key: int) -> bool:
        """Stop saying anything for ``key`` (no line comes after this); whether one came."""
        with self.lock:
            return self.running.pop(key)[3]

    def _loop(self) -> None:
        with self.lock:
            idle_since = time.monotonic()
            while True:
                now = time.monotonic()
                for entry in self.running.values():
                    what, start, due, _ = entry
                    if due <= now:
                        LOGGER.info("%s: %.0f s", what, now - start)
                        entry[2], entry[3] = now + EVERY, True
                if self.running:
                    idle_since = now
                elif now - idle_since >= self.IDLE:
                    self.thread = None
                    return
                soonest = min((e[2] for e in self.running.values()), default=now + self.IDLE)
                self.wake = soonest
                self.lock.wait(max(soonest - now, 0.0))


_TICKER = _Ticker()


@contextlib.contextmanager
def ticking(what: str) -> Iterator[None]:
    """Run the block, saying ``what`` runs (with the seconds so far) from :data:`FIRST`
    seconds on, every :data:`EVERY` seconds, from a thread of qfab's."""
    if LOGGER.disabled or not LOGGER.isEnabledFor(logging.INFO):
        yield
        return
    start = time.monotonic()
    said = False
    if FIRST <= 0:  # every step counts as long: say it before it starts
        LOGGER.info("%s: 0 s", what)
        said = True
    key = object()
    _TICKER.add(id(key), what, start, start + (FIRST if FIRST > 0 else EVERY), said)
    try:
        yield
    finally:
        if _TICKER.remove(id(key)):
            LOGGER.info("%s: done in %.1f s", what, time.monotonic() - start)


class _Callback(logging.Handler):
    def __init__(self, progress: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self.progress(record.getMessage())


def _print(line: str) -> None:
    print(f"qfab: {line}", file=sys.stderr, flush=True)


# Made once: a logging handler takes locks and registers itself as it is made (tens of
# microseconds, as long as a small model's reference run).
_STDERR = _Callback(_print)


@contextlib.contextmanager
def progress_to(progress: Progress) -> Iterator[None]:
    """Send the progress lines of the work inside to ``progress``: a callable (called from a
    thread of qfab's, one line at a time), False (nowhere), or None (the logger as the
    application configured it, else stderr)."""
    saved = LOGGER.disabled, LOGGER.level, LOGGER.propagate
    handler = None
    if progress is False or (progress is None and silenced()):
        LOGGER.disabled = True
    elif callable(progress):
        handler = _Callback(progress)
        LOGGER.propagate = False  # the callback has them; not twice through the root logger
    elif not LOGGER.hasHandlers():
        handler = _STDERR
    if handler is not None:
        LOGGER.addHandler(handler)
        LOGGER.setLevel(logging.INFO)
    try:
        yield
    finally:
        if handler is not None:
            LOGGER.removeHandler(handler)
        LOGGER.disabled, LOGGER.propagate = saved[0], saved[2]
        LOGGER.setLevel(saved[1])
