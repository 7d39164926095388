"""Shared fixtures. Telemetry off and Prefect isolated before anything imports prefect."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_PREFECT_HOME = tempfile.mkdtemp(prefix="clickrec-prefect-")
os.environ.setdefault("PREFECT_HOME", _PREFECT_HOME)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that need the real data sets skip with a reason when it is absent."""
    if not (SHARED_DATA / "rsc15-100k").is_dir() or not (SHARED_DATA / "ml-100k").is_dir():
        pytest.skip(f"real data sets not found at {SHARED_DATA} (../shared/data is absent on this clone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def prefect_harness():
    """One real (temporary, offline) Prefect API for the whole test session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
