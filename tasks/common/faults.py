"""Fault injection for the crash-safety tests: ``CLICKREC_CRASH_AT=<point>`` SIGKILLs the process there.

Points sit where a crash hurts most: between two writes that must agree. Unset, a point costs one
settings read (``tasks.common.settings``).
"""

from __future__ import annotations

import os
import signal

POINTS = (
    "ingest-after-commit",  # raw.clicks committed, Parquet not yet renamed into the lake
    "ingest-mid-publish",  # one Parquet file renamed into the lake, the others not yet
    "features-after-build",  # features committed, bundle half exported
    "train-after-fit",  # a model fitted, checkpoint not saved
    "publish-after-promote",  # some models promoted in the working db, published.duckdb not rebuilt
)


def crash_point(name: str) -> None:
    from tasks.common.settings import get_settings

    if get_settings().crash_at == name:
        os.kill(os.getpid(), signal.SIGKILL)
