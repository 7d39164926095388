"""Which night a run processes: from the flow run's *scheduled* start time, in the deployment's timezone.

A scheduled run at 02:30 on the 8th processes the 7th, whenever it actually starts: a run that starts
late, or is retried the next afternoon, still processes the night it was scheduled for (the wall clock
would pick the wrong day). The timezone is the one of the deployment's schedule (``prefect.yaml``,
``schedules[].timezone``), so it is set in one place; runs without a deployment (the CLI, tests) use
``CLICKREC_TIMEZONE``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from tasks.common.settings import get_settings

Retrain = Literal["last", "daily", "none"]
# A night trains on days before it and validates on the day before it: the first night of a range
# that can train is its third day.
FIRST_TRAINABLE_OFFSET = 2


def night_for(scheduled: datetime, timezone: str) -> date:
    """The night a run scheduled at ``scheduled`` processes: the day before its scheduled day in ``timezone``."""
    if scheduled.tzinfo is None:
        raise ValueError(f"scheduled start {scheduled!r} has no timezone")
    local = scheduled.astimezone(ZoneInfo(timezone))
    return date(local.year, local.month, local.day) - timedelta(days=1)  # a plain date, not Prefect's subclass


def deployment_timezone(deployment_id: str | None) -> str | None:
    """The timezone of the deployment's first active schedule (None: no deployment, or no schedule)."""
    if not deployment_id:
        return None
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment(deployment_id)
    for s in deployment.schedules:
        tz = getattr(s.schedule, "timezone", None)
        if s.active and tz:
            return str(tz)
    return None


def scheduled_night() -> date:
    """The night of the current flow run (see the module's docstring). Outside a flow run: yesterday."""
    from prefect.runtime import deployment, flow_run

    tz = deployment_timezone(deployment.id) or get_settings().timezone
    return night_for(flow_run.scheduled_start_time, tz)


def retrain_days(start: date, end: date, retrain: Retrain) -> list[date]:
    """The nights a backfill of ``[start, end]`` trains after ingesting: the last day only, every night
    that has a training and a validation day before it (in date order), or none."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    if retrain == "last":
        return [end]
    if retrain == "daily":
        first = start + timedelta(days=FIRST_TRAINABLE_OFFSET)
        return [first + timedelta(days=i) for i in range((end - first).days + 1)]
    return []
