"""The gate: decisions on numbers, and a real two-night run where a crippled challenger is rejected."""

from __future__ import annotations

from pathlib import Path

import duckdb

from tasks.gate import decide
from tasks.synth import write_yoochoose_days


def test_decisions_against_the_champion():
    first = decide("m", "v2", 0.30, None, None, 0.05, "P4 HR@20")
    assert first.publish and "first version" in first.reason
    within = decide("m", "v2", 0.29, 0.30, "v1", 0.05, "P4 HR@20")  # 0.29 >= 0.285
    assert within.publish
    worse = decide("m", "v2", 0.20, 0.30, "v1", 0.05, "P4 HR@20")
    assert not worse.publish and "keeping v1" in worse.reason and "0.2000 < 0.2850" in worse.reason
    missing = decide("m", "v2", None, 0.30, "v1", 0.05, "P4 HR@20")
    assert not missing.publish


def test_worse_challenger_keeps_yesterdays_tables(prefect_harness, tmp_path):
    from flows.ingest import backfill_ingest_flow
    from flows.nightly import nightly

    landing = tmp_path / "landing"
    write_yoochoose_days(landing, days=5, clicks_per_day=3000, seed=4, with_user=True)
    home = tmp_path / "home"
    backfill_ingest_flow(source="synthetic", path=str(landing), start="2014-04-01", end="2014-04-03", home=str(home))
    good = nightly(run_date="2014-04-04", source="synthetic", path=str(landing), home=str(home), only=["ease"])
    assert [d["decision"] for d in good["decisions"]] == ["published"]
    # The same model, crippled: a ridge so strong that EASE forgets every item-item relation.
    cfg = tmp_path / "worse.toml"
    cfg.write_text("[model_params.ease]\nl2 = 1e12\n")
    bad = nightly(run_date="2014-04-05", source="synthetic", path=str(landing), home=str(home), only=["ease"],
                  config=str(cfg))
    [decision] = bad["decisions"]
    assert decision["decision"] == "rejected" and "keeping" in decision["reason"]
    con = duckdb.connect(str(Path(home) / "published.duckdb"), read_only=True)
    try:
        latest = con.execute("SELECT DISTINCT run_date::VARCHAR, model_version FROM recs.latest_user_topn").fetchall()
        status = dict(con.execute("SELECT run_date::VARCHAR, status FROM models.model_runs").fetchall())
    finally:
        con.close()
    assert latest == [("2014-04-04", good["models"][0]["version"])]
    assert status == {"2014-04-04": "published", "2014-04-05": "rejected"}
