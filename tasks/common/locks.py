"""Run-level locks: one run per night, one writer on a warehouse, and liveness of a run's scratch files.

``fcntl.flock`` locks belong to the open file and vanish with the process, so a killed run
(SIGKILL included) never leaves a stale lock behind: the next run simply gets it. The warehouse
lock is re-entrant inside a process (a night holds it for its whole run; its own ingest step takes
it again from a task thread), so every ingest path — ``ingest``, ``backfill``, ``nightly`` — can
hold it from commit through lake publish without deadlocking the night that called it. Threads of
one process still serialise their commits on the in-process ``WRITE_LOCK``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

from tasks.common.config import Home, UserInputError, lock_wait_seconds

# One writer on the warehouse at a time inside this process (threads of a backfill).
WRITE_LOCK = threading.Lock()
_held: dict[Path, tuple[int, object]] = {}  # lock path -> (depth, open file) held by this process
_held_guard = threading.Lock()
_POLL_SECONDS = 0.25  # polling a lock held by another process; not test synchronisation


class RunLockedError(UserInputError):
    """Another process holds the night or the warehouse."""

    exit_code = 4


def _lock_path(home: Home, name: str) -> Path:
    folder = home.root / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}.lock"


def _describe_self(what: str) -> str:
    command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv[:6]))
    since = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"pid {os.getpid()} ({what}: {command}) since {since}"


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "another process"
    except OSError:
        return "another process"


def _claim(fh, what: str) -> None:
    fh.seek(0)
    fh.truncate()
    fh.write(_describe_self(what))
    fh.flush()


@contextlib.contextmanager
def night_lock(home: Home, day: date, wait_seconds: float | None = None) -> Iterator[None]:
    """Exclusive for night ``day``; a second run of the same night exits at once with a clear message,
    then all runs are serialised on the warehouse (``wait_seconds``, default the one lock-wait setting:
    a later night waits for an earlier one instead of interleaving with it)."""
    path = _lock_path(home, f"night-{day}")
    fh = open(path, "a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(f"night {day} is already running ({_holder(path)}); not starting a second run") from None
        _claim(fh, f"night {day}")
        with warehouse_lock(home, wait_seconds, what=f"night {day}"):
            yield
    finally:
        fh.close()


@contextlib.contextmanager
def warehouse_lock(home: Home, wait_seconds: float | None = None, what: str = "run") -> Iterator[None]:
    """The warehouse's cross-process writer lock, waiting up to the configured timeout for its holder.

    Fails with one line naming the holder (pid, command, since when). Re-entrant in one process."""
    path = _lock_path(home, "warehouse")
    with _held_guard:
        depth, fh = _held.get(path, (0, None))
        if depth:
            _held[path] = (depth + 1, fh)
    if not depth:
        fh = _acquire(path, lock_wait_seconds() if wait_seconds is None else wait_seconds, what, home)
        with _held_guard:
            d, _ = _held.get(path, (0, None))
            _held[path] = (d + 1, fh)
    try:
        yield
    finally:
        with _held_guard:
            d, f = _held[path]
            if d == 1:
                del _held[path]
                f.close()  # releases the flock
            else:
                _held[path] = (d - 1, f)


def _acquire(path: Path, wait: float, what: str, home: Home):
    fh = open(path, "a+")
    deadline = time.monotonic() + wait
    announced = False
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if not announced:  # say once why nothing happens (and let tests see it)
                print(f"waiting for the warehouse {home.root}: held by {_holder(path)}", file=sys.stderr, flush=True)
                announced = True
            if time.monotonic() >= deadline:
                holder = _holder(path)
                fh.close()
                raise RunLockedError(f"{home.root}: the warehouse is still held after {wait:.0f} s by {holder}") from None
            time.sleep(_POLL_SECONDS)
    _claim(fh, what)
    return fh


# Kept for callers that name the old function.
warehouse_run_lock = warehouse_lock


@contextlib.contextmanager
def run_alive(home: Home, run_id: str) -> Iterator[None]:
    """Mark run ``run_id`` as alive for as long as this block runs (its scratch files are in use)."""
    folder = home.tmp / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.lock"
    fh = open(path, "a+")
    fcntl.flock(fh, fcntl.LOCK_EX)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        fh.close()


def run_is_alive(home: Home, run_id: str) -> bool:
    """Whether a live process still holds run ``run_id`` (a killed run's lock vanished with it)."""
    path = home.tmp / "runs" / f"{run_id}.lock"
    if not path.exists():
        return False
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False
