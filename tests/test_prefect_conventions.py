"""Prefect conventions of the flows and deployments, each checked against Prefect itself where it can be:
the run date from the scheduled start in the schedule's timezone, typed and described parameters,
pull steps resolved on the worker, no stale dates, telemetry off, run names and timeouts, the
on-failure hook recording in ops, and ``run_deployment``'s final state checked."""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest
import yaml
from prefect import Flow, Task, flow
from prefect.client.schemas.objects import FlowRun
from prefect.states import Completed, Crashed, Failed, Running

import flows.nightly as nightly_module
from flows.nightly import RemoteRunError, require_completed
from tasks.common.config import Home
from tasks.common.run_date import night_for, retrain_days, scheduled_night
from tasks.report.status import warehouse_status

REPO = Path(__file__).resolve().parent.parent
PREFECT_YAML = yaml.safe_load((REPO / "prefect.yaml").read_text())
DEPLOYMENTS = {d["name"]: d for d in PREFECT_YAML["deployments"]}


def _entrypoint(dep: dict) -> Flow:
    module, name = dep["entrypoint"].split(":")
    mod = __import__(module.removesuffix(".py").replace("/", "."), fromlist=[name])
    return getattr(mod, name)


# ------------------------------------------------------------------------------------ run date


def test_the_night_is_the_day_before_the_scheduled_start_in_the_schedule_timezone():
    scheduled = datetime(2014, 4, 7, 23, 30, tzinfo=UTC)  # 01:30 on the 8th in Berlin (CEST, +2)
    assert night_for(scheduled, "UTC") == date(2014, 4, 6)
    assert night_for(scheduled, "Europe/Berlin") == date(2014, 4, 7)
    assert night_for(datetime(2014, 4, 8, 3, 0, tzinfo=UTC), "America/New_York") == date(2014, 4, 6)  # 23:00 on the 7th
    with pytest.raises(ValueError, match="no timezone"):
        night_for(datetime(2014, 4, 8, 2, 30), "UTC")  # noqa: DTZ001 - the point of the test


@flow(name="probe-scheduled-night")
def _probe_night() -> date:
    return scheduled_night()


def test_a_deployment_run_takes_its_night_from_the_scheduled_time_and_the_schedule_timezone(prefect_harness):
    """A real deployment with an Auckland schedule; its flow run scheduled for 13:30 UTC on the 7th (01:30
    on the 8th in Auckland) runs now, years later: it processes the 7th, not "yesterday"."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.flow_engine import run_flow
    from prefect.states import Scheduled

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow(_probe_night)
        deployment_id = client.create_deployment(
            flow_id=flow_id, name="probe", entrypoint="tests/test_prefect_conventions.py:_probe_night",
            schedules=[DeploymentScheduleCreate(schedule=CronSchedule(cron="30 1 * * *", timezone="Pacific/Auckland"),
                                                active=True)])
        run = client.create_flow_run_from_deployment(
            deployment_id, state=Scheduled(scheduled_time=datetime(2014, 4, 7, 13, 30, tzinfo=UTC)))
    assert run_flow(_probe_night, flow_run=run) == date(2014, 4, 7)


def test_a_run_without_a_deployment_takes_yesterday_in_the_configured_zone(prefect_harness, monkeypatch):
    # A zone whose date differs from UTC's right now (UTC+14 from 10:00 UTC, UTC-11 before 11:00 UTC),
    # so a flow that ignored the setting would return another day.
    zone = "Pacific/Kiritimati" if datetime.now(UTC).hour >= 10 else "Pacific/Pago_Pago"
    monkeypatch.setenv("CLICKREC_TIMEZONE", zone)
    before = night_for(datetime.now(UTC), zone)
    got = _probe_night()
    assert got in {before, night_for(datetime.now(UTC), zone)}  # both: the call may straddle midnight
    assert got != night_for(datetime.now(UTC), "UTC")


def test_backfill_nights():
    d = date(2014, 4, 1)
    assert retrain_days(d, date(2014, 4, 5), "last") == [date(2014, 4, 5)]
    assert retrain_days(d, date(2014, 4, 5), "daily") == [date(2014, 4, 3), date(2014, 4, 4), date(2014, 4, 5)]
    assert retrain_days(d, date(2014, 4, 2), "daily") == []  # no night has a training and a validation day
    assert retrain_days(d, date(2014, 4, 5), "none") == []


# ------------------------------------------------------------------------------------ parameters


def _schema(f: Flow) -> dict:
    from prefect.utilities.callables import parameter_schema

    return parameter_schema(f.fn).model_dump()["properties"]


def _formats(prop: dict) -> set[str | None]:
    return {prop.get("format"), *(a.get("format") for a in prop.get("anyOf", []))}


@pytest.mark.parametrize("name", ["nightly", "backfill"])
def test_flow_parameters_are_typed_and_described_for_the_ui(name):
    f = getattr(nightly_module, name)
    props = _schema(f)
    assert set(props) == set(inspect.signature(f.fn).parameters)
    undescribed = [k for k, v in props.items() if not (v.get("description") or "").strip()]
    assert not undescribed, f"{name}: parameters without a description: {undescribed}"
    dates = ["run_date"] if name == "nightly" else ["start", "end"]
    for key in dates:
        assert "date" in _formats(props[key]), (key, props[key])  # the UI offers a date picker
    if name == "backfill":
        assert props["retrain"]["enum"] == ["last", "daily", "none"]


def test_flows_and_tasks_have_run_names_and_timeouts():
    """Every flow and task the nightly module defines or configures (imported originals aside)."""
    tree = ast.parse(Path(nightly_module.__file__).read_text())
    imported = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    objects = [v for k, v in vars(nightly_module).items() if isinstance(v, Flow | Task) and k not in imported]
    assert {o.name for o in objects} >= {"nightly", "backfill", "prepare-night", "record-gate-publish", "retention",
                                         "landing-files", "ingest-day", "build-report"}
    for o in objects:
        name = o.flow_run_name if isinstance(o, Flow) else o.task_run_name
        assert name, f"{o.name}: no run name"
        assert o.timeout_seconds and o.timeout_seconds > 0, f"{o.name}: no timeout"


# ------------------------------------------------------------------------------------ prefect.yaml


def test_deployments_name_real_parameters_and_no_stale_dates():
    for name, dep in DEPLOYMENTS.items():
        params = dep.get("parameters") or {}
        accepted = set(inspect.signature(_entrypoint(dep).fn).parameters)
        assert set(params) <= accepted, f"{name}: unknown parameters {set(params) - accepted}"
        stale = {k: v for k, v in params.items() if re.search(r"\d{4}-\d{2}-\d{2}", str(v))}
        assert not stale, f"{name}: dates baked into the deployment: {stale}"


def test_the_timezone_is_set_once_in_the_schedule():
    text = (REPO / "prefect.yaml").read_text()
    assert "CLICKREC_TIMEZONE" not in text  # the flow reads the schedule's timezone; no second copy
    [schedule] = DEPLOYMENTS["nightly"]["schedules"]
    assert schedule["timezone"]


def test_telemetry_is_off_in_every_deployment_environment():
    for name, dep in DEPLOYMENTS.items():
        env = dep["work_pool"]["job_variables"]["env"]
        assert env.get("DO_NOT_TRACK") == "1", name
        assert env.get("PREFECT_SERVER_ANALYTICS_ENABLED") == "false", name
        assert env.get("GX_ANALYTICS_ENABLED") == "false", name
    assert DEPLOYMENTS["gpu"]["work_pool"]["job_variables"]["env"]["CLICKREC_DEVICE"] == "cuda"


def test_the_pull_step_resolves_the_checkout_on_the_worker(tmp_path, monkeypatch):
    """Prefect's own deploy-time templating, then its own pull-step runner: the deploying machine's
    CLICKREC_REPO must not survive into the deployment; the worker's must be where the run starts."""
    from prefect.deployments.steps.core import run_steps
    from prefect.utilities.templating import apply_values

    monkeypatch.setenv("CLICKREC_REPO", "/the/deploying/machine/checkout")
    deployed = apply_values(PREFECT_YAML["pull"], {}, remove_notset=False)  # as `prefect deploy` does
    assert "/the/deploying/machine" not in str(deployed)
    worker_checkout = tmp_path / "worker-checkout"
    worker_checkout.mkdir()
    monkeypatch.setenv("CLICKREC_REPO", str(worker_checkout))
    monkeypatch.chdir(tmp_path)  # restored after the test: the step changes the working directory
    asyncio.run(run_steps(deployed, {}))
    assert Path.cwd() == worker_checkout
    monkeypatch.delenv("CLICKREC_REPO")
    with pytest.raises(Exception, match="run_shell_script"):  # a worker without it fails the run, clearly
        asyncio.run(run_steps(deployed, {}))


# ------------------------------------------------------------------------------------ failures


def test_a_failed_night_is_recorded_in_ops_and_shown_by_status(prefect_harness, tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "clicks-2014-04-04.dat").write_text("")  # a landing file for another day only
    home = tmp_path / "home"
    state = nightly_module.nightly(run_date="2014-04-05", source="synthetic", path=str(landing), home=str(home),
                                   return_state=True)
    assert state.is_failed()
    con = duckdb.connect(str(Home.resolve(home).db), read_only=True)
    try:
        rows = con.execute("SELECT flow, run_name, run_date, state, error FROM ops.flow_failures").fetchall()
    finally:
        con.close()
    assert rows == [("nightly", "nightly-2014-04-05", date(2014, 4, 5), "Failed",
                     f"NothingToDoError: {landing}: no landing file for 2014-04-05")]
    [shown] = warehouse_status(Home.resolve(home))["failures"]
    assert shown["run_name"] == "nightly-2014-04-05" and "no landing file" in shown["error"]


def _run(state) -> FlowRun:
    from uuid import uuid4

    return FlowRun(flow_id=uuid4(), name="train-2014-04-05", state=state)


def test_run_deployment_final_state_is_checked():
    assert require_completed(_run(Completed()), "training").name == "train-2014-04-05"
    for state, needle in ((Failed(message="CUDA out of memory"), "ended Failed: CUDA out of memory"),
                          (Crashed(message="worker died"), "ended Crashed"),
                          (Running(), "still Running")):
        with pytest.raises(RemoteRunError, match=needle):
            require_completed(_run(state), "training deployment train-night/gpu")
    with pytest.raises(RemoteRunError, match="no flow run"):
        require_completed(None, "training")


def test_training_through_a_deployment_refuses_a_run_that_did_not_complete(prefect_harness, tmp_path, monkeypatch):
    """A real deployment and a real ``run_deployment``: no worker picks the run up within the (here
    zero) timeout, so the night must stop instead of reading a results file that is not there."""
    from prefect.client.orchestration import get_client

    from flows.train import train_night

    with get_client(sync_client=True) as client:
        client.create_deployment(flow_id=client.create_flow(train_night), name="probe-gpu",
                                 entrypoint="flows/train.py:train_night")
    monkeypatch.setenv("CLICKREC_TRAIN_DEPLOYMENT", "train-night/probe-gpu")
    monkeypatch.setattr(nightly_module, "TRAIN_TIMEOUT_SECONDS", 0)
    with pytest.raises(RemoteRunError, match="still Scheduled"):
        nightly_module.train(Home.resolve(tmp_path / "home"), str(tmp_path / "bundle"), None)
