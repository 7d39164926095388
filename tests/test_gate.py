"""The publish decisions: the gate on numbers, the autoencoder selection, one status vocabulary, and a
real two-night run where a crippled challenger is rejected."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tasks.common.config import Home
from tasks.common.models import GATE_FIGURE, Family
from tasks.common.sqlfiles import SQL_DIR
from tasks.common.warehouse import connect
from tasks.publish.decision import Status, Verdict, decide, select_autoencoder, verdict
from tasks.publish.record import gate, record_result, set_status
from tasks.tools.synth import write_yoochoose_days


def test_decisions_against_the_champion():
    first = decide("m", "v2", 0.30, None, None, 0.05, "P4 HR@20")
    assert first.publish and "first version" in first.reason
    within = decide("m", "v2", 0.29, 0.30, "v1", 0.05, "P4 HR@20")  # 0.29 >= 0.285
    assert within.publish
    worse = decide("m", "v2", 0.20, 0.30, "v1", 0.05, "P4 HR@20")
    assert not worse.publish and "keeping v1" in worse.reason and "0.2000 < 0.2850" in worse.reason
    missing = decide("m", "v2", None, 0.30, "v1", 0.05, "P4 HR@20")
    assert not missing.publish


def _result(version: str, hr20: float, champion: dict | None = None) -> dict:
    return {"model": "gru4rec", "version": version, "family": "session", "params": {}, "device": "cpu",
            "train_seconds": 1.0, "checkpoint_path": None, "champion_on_test": champion,
            "metrics": [{"protocol": "P4-session", "metric": "HR", "k": 20, "value": hr20}]}


def test_gate_compares_with_the_champion_rescored_on_the_same_day(tmp_path):
    """Yesterday's champion scored 0.50 on its own test day; tonight's test day is harder for every model.
    Re-scored on tonight's day it gets 0.30, so a challenger at 0.29 is within 5% and is published."""
    d1, d2 = date(2014, 4, 4), date(2014, 4, 5)
    meta = {"train_start": "2014-04-01", "valid_day": "2014-04-03"}
    con = connect(Home.resolve(tmp_path / "home").ensure())
    try:
        record_result(con, "r1", d1, meta, _result("v1", 0.50))
        set_status(con, d1, Verdict("gru4rec", "v1", Status.PUBLISHED, "first"))
        same_day = gate(con, d2, _result("v2", 0.29, {"version": "v1", "metrics": _result("v1", 0.30)["metrics"]}), 0.05)
        stored = gate(con, d2, _result("v2", 0.29), 0.05)
        other = gate(con, d2, _result("v2", 0.29, {"version": "v0", "metrics": _result("v0", 0.30)["metrics"]}), 0.05)
    finally:
        con.close()
    assert same_day.publish and same_day.champion == 0.30 and "on 2014-04-05" in same_day.reason
    assert not stored.publish and stored.champion == 0.50  # no re-scored figure: the stored one
    assert not other.publish and other.champion == 0.50  # a re-score of another version is not the champion's


def _autoencoder(model: str, valid: dict, hr20: float = 0.1) -> dict:
    return {"model": model, "version": f"{model}-v", "family": "autoencoder", "fit": {"valid_metrics": valid},
            "metrics": [{"protocol": "P4-similar", "metric": "HR", "k": 20, "value": hr20}]}


def test_the_autoencoder_that_validates_better_is_selected_on_validation_figures_only():
    # Enough validation users: top-N NDCG@10 decides, although multdae's test figure is higher.
    vae = _autoencoder("multvae", {"n_predictions": 500, "NDCG@10": 0.20, "sim_HR@20": 0.1}, hr20=0.1)
    dae = _autoencoder("multdae", {"n_predictions": 500, "NDCG@10": 0.10, "sim_HR@20": 0.9}, hr20=0.9)
    assert select_autoencoder([vae, dae]) == "multvae"
    # Too few validation users (a session source): similarity's next-item HR@20 decides instead.
    vae_s = _autoencoder("multvae", {"n_predictions": 3, "NDCG@10": 0.90, "sim_HR@20": 0.1})
    dae_s = _autoencoder("multdae", {"n_predictions": 3, "NDCG@10": 0.10, "sim_HR@20": 0.3})
    assert select_autoencoder([vae_s, dae_s]) == "multdae"
    assert select_autoencoder([_result("v1", 0.3)]) is None  # no autoencoder tonight


def test_verdicts_use_one_status_vocabulary_for_the_database_and_the_night():
    passed = decide("multdae", "d1", 0.3, None, None, 0.05, "P4-similar HR@20")
    loser = verdict(_autoencoder("multdae", {}), passed, selected_autoencoder="multvae")
    assert loser.status is Status.NOT_SELECTED and loser.reason == "multvae validated better"
    assert loser.to_dict()["decision"] == "not-selected"  # the spelling models.model_runs stores
    winner = verdict(_autoencoder("multvae", {}), passed, selected_autoencoder="multvae")
    assert winner.status is Status.PUBLISHED
    rejected = verdict(_result("v2", 0.1), decide("gru4rec", "v2", 0.1, 0.3, "v1", 0.05, "x"), "multvae")
    assert rejected.to_dict()["decision"] == "rejected"  # not an autoencoder: its gate decides
    assert set(GATE_FIGURE) == set(Family)  # every family has the figure it is judged by


def test_every_status_the_sql_names_is_in_the_vocabulary():
    """SQL files compare ``status`` with literals (champion lookups, the status counts): each literal must
    be a :class:`Status` value, or a typo would silently match nothing."""
    literal = re.compile(r"status\s*(?:=|<>|!=)\s*'([^']*)'|status\s+(?:NOT\s+)?IN\s*\(([^)]*)\)", re.IGNORECASE)
    found: set[str] = set()
    for f in SQL_DIR.rglob("*.sql"):
        if f.parent.name in ("ingest", "staging", "validate"):  # ops.ingest_runs has its own states
            continue
        for one, many in literal.findall(f.read_text()):
            found |= {one} if one else set(re.findall(r"'([^']*)'", many))
    assert found, "no status literal found: the pattern no longer matches the SQL"
    assert found <= {s.value for s in Status}, found - {s.value for s in Status}


CRIPPLED = {
    # a ridge so strong that EASE forgets every item-item relation
    "ease": ("[night.models.ease]\nl2 = 1e12\n", "recs.latest WHERE kind = 'user_topn'"),
    # one epoch at learning rate 0: GRU4Rec's random initial weights, never trained
    "gru4rec": ("[night.models.gru4rec]\nepochs = 1\nlr = 0.0\n", "recs.latest WHERE kind = 'session_next'"),
}


@pytest.mark.parametrize("model", sorted(CRIPPLED))
def test_worse_challenger_keeps_yesterdays_tables(model, prefect_harness, tmp_path):
    from flows.ingest import backfill_ingest_flow
    from flows.nightly import nightly

    landing = tmp_path / "landing"
    write_yoochoose_days(landing, days=5, clicks_per_day=3000, seed=4, with_user=True)
    home = tmp_path / "home"
    backfill_ingest_flow(source="synthetic", path=str(landing), start="2014-04-01", end="2014-04-03", home=str(home))
    good = nightly(run_date="2014-04-04", source="synthetic", path=str(landing), home=str(home), only=[model])
    assert [d["decision"] for d in good["decisions"]] == ["published"]
    text, view = CRIPPLED[model]
    cfg = tmp_path / "worse.toml"
    cfg.write_text(text)
    bad = nightly(run_date="2014-04-05", source="synthetic", path=str(landing), home=str(home), only=[model],
                  config=str(cfg))
    [decision] = bad["decisions"]
    assert decision["decision"] == "rejected" and "keeping" in decision["reason"]
    con = duckdb.connect(str(Path(home) / "published.duckdb"), read_only=True)
    try:
        latest = con.execute(f"SELECT DISTINCT run_date::VARCHAR, model_version FROM {view}").fetchall()  # noqa: S608 - fixed names
        status = dict(con.execute("SELECT run_date::VARCHAR, status FROM models.model_runs").fetchall())
    finally:
        con.close()
    assert latest == [("2014-04-04", good["models"][0]["version"])]
    assert status == {"2014-04-04": "published", "2014-04-05": "rejected"}
