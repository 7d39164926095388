"""Run-level locks: one run per night, one night at a time on a warehouse.

``fcntl.flock`` locks belong to the process and vanish with it, so a killed run (SIGKILL
included) never leaves a stale lock behind: the next run simply gets it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from datetime import date

from tasks.config import Home, UserInputError


class RunLockedError(UserInputError):
    """Another process holds the night or the warehouse."""

    exit_code = 4


def _lock_file(home: Home, name: str):
    folder = home.root / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    return open(folder / f"{name}.lock", "a+")


@contextlib.contextmanager
def night_lock(home: Home, day: date, wait_seconds: float | None = None) -> Iterator[None]:
    """Exclusive for night ``day``; a second run of the same night exits at once with a clear message,
    then all runs are serialised on the warehouse (``wait_seconds``, default CLICKREC_LOCK_WAIT_SECONDS
    or 6 h: a later night waits for an earlier one instead of interleaving with it)."""
    fh = _lock_file(home, f"night-{day}")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise RunLockedError(f"night {day} is already running ({holder}); not starting a second run") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        with warehouse_run_lock(home, wait_seconds):
            yield
    finally:
        fh.close()


@contextlib.contextmanager
def warehouse_run_lock(home: Home, wait_seconds: float | None = None) -> Iterator[None]:
    wait = float(os.environ.get("CLICKREC_LOCK_WAIT_SECONDS", 6 * 3600)) if wait_seconds is None else wait_seconds
    fh = _lock_file(home, "warehouse")
    deadline = time.monotonic() + wait
    announced = False
    try:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not announced:  # say once why nothing happens (and let tests see it)
                    print(f"waiting for the warehouse: another night is running on {home.root}", file=sys.stderr,
                          flush=True)
                    announced = True
                if time.monotonic() >= deadline:
                    raise RunLockedError(f"{home.root}: another night is still running after {wait:.0f} s") from None
                time.sleep(0.5)  # polling a lock held by another process; not test synchronisation
        yield
    finally:
        fh.close()
