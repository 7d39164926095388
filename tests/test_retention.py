"""Retention on real homes: a real warehouse's model runs, real GX results from a real ingest, files on disk."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tasks.common.config import Home
from tasks.common.profiles import load_profile
from tasks.common.warehouse import session
from tasks.ingest.landing import new_run_id
from tasks.ingest.run import ingest
from tasks.publish.decision import Status, Verdict
from tasks.publish.record import record_result, set_status
from tasks.publish.retention import RetentionPolicy, prune
from tasks.tools.synth import write_yoochoose_days

NIGHTS = [date(2014, 4, d) for d in (4, 5, 6, 7)]
OLD = (datetime.now(UTC) - timedelta(days=400)).timestamp()


def _checkpoint(home: Home, label: str, version: str) -> Path:
    folder = home.models / label / version
    folder.mkdir(parents=True)
    (folder / "weights.pt").write_bytes(b"\0" * 1000)
    (folder / "meta.json").write_text("{}")
    return folder


def _age(path: Path, timestamp: float) -> None:
    for p in [path, *path.rglob("*")]:
        os.utime(p, (timestamp, timestamp))


@pytest.fixture
def home_with_history(tmp_path) -> tuple[Home, dict[str, Path]]:
    """Four nights of gru4rec: published on the 4th and 5th, rejected on the 6th and 7th, so the 5th's
    version is the champion; night bundles for each night; every file written long ago."""
    home = Home.resolve(tmp_path / "home").ensure()
    statuses = [Status.PUBLISHED, Status.PUBLISHED, Status.REJECTED, Status.REJECTED]
    paths = {}
    meta = {"train_start": "2014-04-01", "valid_day": "2014-04-03"}
    with session(home) as con:
        for night, status in zip(NIGHTS, statuses, strict=True):
            version = f"v{night.day}"
            paths[version] = _checkpoint(home, "gru4rec", version)
            record_result(con, "r", night, meta, {
                "model": "gru4rec", "version": version, "params": {}, "device": "cpu", "train_seconds": 1.0,
                "checkpoint_path": str(paths[version]), "metrics": []})
            set_status(con, night, Verdict("gru4rec", version, status, "test"))
            (home.root / "nights" / str(night)).mkdir(parents=True)
            (home.root / "nights" / str(night) / "meta.json").write_text("{}")
    (home.root / "nights" / "not-a-night").mkdir()
    paths["orphan-old"] = _checkpoint(home, "narm", "crashed-long-ago")
    paths["orphan-new"] = _checkpoint(home, "narm", "crashed-just-now")
    for p in [*(home.root / "nights").iterdir(), *paths.values()]:
        _age(p, OLD)
    _age(paths["orphan-new"], datetime.now(UTC).timestamp())
    return home, paths


def test_old_nights_and_checkpoints_go_but_the_champion_stays(home_with_history):
    home, paths = home_with_history
    pruned = prune(home, RetentionPolicy(nights=2))  # newest night the 7th: the 6th and 7th are kept
    left = sorted(p.name for p in (home.root / "nights").iterdir())
    assert left == ["2014-04-06", "2014-04-07", "not-a-night"]  # a folder that is no night is left alone
    assert not paths["v4"].exists()  # published once, no longer the champion, outside the window
    assert paths["v5"].exists()  # the champion, although its night is outside the window
    assert paths["v6"].exists() and paths["v7"].exists()  # inside the window, rejected or not
    assert not paths["orphan-old"].exists()  # no night recorded it, written long ago
    assert paths["orphan-new"].exists()  # no night recorded it yet: maybe a training still running
    summary = pruned.to_dict()
    assert summary["nights"]["removed"] == 2 and summary["models"]["removed"] == 2
    again = prune(home, RetentionPolicy(nights=2))  # idempotent: a second pass finds nothing
    assert again.to_dict() == {}


def test_a_longer_window_keeps_everything(home_with_history):
    home, paths = home_with_history
    prune(home, RetentionPolicy(nights=4))
    assert all(p.exists() for k, p in paths.items() if k != "orphan-old")
    assert len(list((home.root / "nights").iterdir())) == 5


def test_gx_results_age_by_when_they_ran(tmp_path):
    landing = tmp_path / "landing"
    files = sorted(write_yoochoose_days(landing, days=2, clicks_per_day=300, seed=2, with_user=True))
    home = Home.resolve(tmp_path / "home").ensure()
    for day, f in zip((date(2014, 4, 1), date(2014, 4, 2)), files, strict=True):
        ingest(home, load_profile("synthetic"), [f], day=day, run_id=new_run_id(f"t-{day}"))
    stores = [home.gx / "gx" / "uncommitted" / "validations",
              home.gx / "gx" / "uncommitted" / "data_docs" / "local_site" / "validations"]

    def results() -> list[Path]:
        return sorted(p for s in stores for p in s.rglob("*") if p.is_file() and p.suffix in (".json", ".html"))

    before = results()
    assert len(before) == 12  # 3 suites x 2 runs, as JSON results and as Data Docs pages
    assert prune(home, RetentionPolicy(gx_days=30), now=datetime.now(UTC) + timedelta(days=29)).to_dict() == {}
    assert results() == before
    pruned = prune(home, RetentionPolicy(gx_days=30), now=datetime.now(UTC) + timedelta(days=31))
    assert results() == [] and pruned.to_dict()["gx"]["removed"] == 12
    assert (home.gx / "gx" / "expectations").is_dir()  # the suites themselves are kept


def test_prefect_storage_is_pruned_only_inside_the_home(tmp_path):
    home = Home.resolve(tmp_path / "home").ensure()
    inside = home.root / "prefect" / "storage"
    outside = tmp_path / "elsewhere" / "storage"
    for folder in (inside, outside):
        folder.mkdir(parents=True)
        for name, stamp in (("old", OLD), ("new", datetime.now(UTC).timestamp())):
            (folder / name).write_text("{}")
            os.utime(folder / name, (stamp, stamp))
    prune(home, RetentionPolicy(prefect_storage_days=7), prefect_storage=inside)
    assert sorted(p.name for p in inside.iterdir()) == ["new"]
    out = prune(home, RetentionPolicy(prefect_storage_days=7), prefect_storage=outside)
    assert sorted(p.name for p in outside.iterdir()) == ["new", "old"]
    assert "outside the home folder" in out.to_dict()["skipped"][0]


def test_a_policy_below_one_is_refused():
    with pytest.raises(ValueError, match="nights must be >= 1"):
        RetentionPolicy(nights=0)


def test_the_nightly_prunes_at_its_end_and_keeps_the_champion(prefect_harness, tmp_path):
    """Two real nights with ``retention_days = 1``: after the second, the first night's bundle is gone, and
    of the first night's checkpoint only what the champion needs is left."""
    from flows.ingest import backfill_ingest_flow
    from flows.nightly import nightly

    landing = tmp_path / "landing"
    write_yoochoose_days(landing, days=5, clicks_per_day=2000, seed=6, with_user=True)
    home = tmp_path / "home"
    backfill_ingest_flow(source="synthetic", path=str(landing), start="2014-04-01", end="2014-04-03", home=str(home))
    cfg = tmp_path / "night.toml"
    cfg.write_text("[night]\nretention_days = 1\n[night.models.gru4rec]\nepochs = 1\n")
    for night in ("2014-04-04", "2014-04-05"):
        done = nightly(run_date=night, source="synthetic", path=str(landing), home=str(home), config=str(cfg),
                       only=["gru4rec"])
    assert sorted(p.name for p in (home / "nights").iterdir()) == ["2014-04-05"]
    assert done["retention"]["nights"]["removed"] == 1
    h = Home.resolve(home)
    with session(h, read_only=True) as con:
        runs = dict(con.execute("SELECT run_date::VARCHAR, checkpoint_path FROM models.model_runs").fetchall())
        [(champion,)] = con.execute("SELECT checkpoint_path FROM models.model_runs WHERE status = 'published' "
                                    "ORDER BY run_date DESC LIMIT 1").fetchall()
    left = {str(p) for p in (h.models / "gru4rec").iterdir()}
    assert left == {champion, runs["2014-04-05"]}  # the first night's only if it is still the champion
