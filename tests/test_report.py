"""Nightly report: SVG helpers, the HTML page on a small hand-made warehouse, escaping, artifacts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from tasks.common.config import Home
from tasks.common.warehouse import connect
from tasks.report.charts import bar_chart, line_chart
from tasks.report.html import (
    METRICS_ARTIFACT_KEY,
    REPORT_ARTIFACT_KEY,
    build_report,
    build_report_task,
    load_report_data,
    popularity_stats,
    publish_report_artifacts,
)

SVG = "{http://www.w3.org/2000/svg}"
NIGHT = date(2024, 3, 5)
HOSTILE = '<script>alert("x")</script>'

# The recs layer's tables (another engineer's sql/recs/schema.sql); created here when not there yet.
RECS_DDL = """
CREATE SCHEMA IF NOT EXISTS recs;
CREATE TABLE IF NOT EXISTS recs.user_topn (run_date DATE, model VARCHAR, model_version VARCHAR,
    user_id VARCHAR, rank INTEGER, item_id VARCHAR, score DOUBLE);
CREATE TABLE IF NOT EXISTS recs.session_next (run_date DATE, model VARCHAR, model_version VARCHAR,
    session_id VARCHAR, rank INTEGER, item_id VARCHAR, score DOUBLE);
CREATE TABLE IF NOT EXISTS recs.item_similar (run_date DATE, model VARCHAR, model_version VARCHAR,
    item_id VARCHAR, rank INTEGER, similar_item_id VARCHAR, score DOUBLE);
CREATE TABLE IF NOT EXISTS recs.candidate_user_topn AS SELECT * FROM recs.user_topn LIMIT 0;
CREATE TABLE IF NOT EXISTS recs.candidate_session_next AS SELECT * FROM recs.session_next LIMIT 0;
CREATE TABLE IF NOT EXISTS recs.candidate_item_similar AS SELECT * FROM recs.item_similar LIMIT 0;
"""


# ----------------------------------------------------------------------------------------------- svg


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on malformed XML
    assert root.tag == f"{SVG}svg"
    return root


def _marks(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{SVG}{tag}") if e.get("class") == cls]


def test_bar_chart_one_rect_per_value_heights_ordered() -> None:
    root = _parse(bar_chart([5, 10, 0, 2.5], ["a", "b", "c", "d"], title="t"))
    bars = _marks(root, "rect", "bar")
    assert len(bars) == 4
    heights = [float(b.get("height")) for b in bars]
    assert heights[1] > heights[0] > heights[3] > heights[2] == 0.0
    # Tooltips carry label and value.
    assert [b.find(f"{SVG}title").text for b in bars][1] == "b: 10"


def test_bar_chart_log_scale_and_empty_and_escaping() -> None:
    root = _parse(bar_chart([1000, 10, 1], log_y=True))
    h = [float(b.get("height")) for b in _marks(root, "rect", "bar")]
    # log10(1+v): 1000 vs 10 is ~3:1, not 100:1.
    assert 2.5 < h[0] / h[1] < 3.2
    assert _marks(_parse(bar_chart([])), "rect", "bar") == []
    svg = bar_chart([1], [HOSTILE], title=HOSTILE)
    assert "<script" not in svg
    _parse(svg)
    with pytest.raises(ValueError):
        bar_chart([1, 2], ["only one"])


def test_line_chart_points_gaps_and_legend() -> None:
    svg = line_chart(["d1", "d2", "d3", "d4"], {"a": [0.1, 0.2, None, 0.4], "b": [0.3, 0.3, 0.3, 0.3]})
    root = _parse(svg)
    assert len(_marks(root, "circle", "point")) == 7  # the None is not drawn
    # Series a is split by its gap into two segments, of which one has 2 points and one 1 (not drawn).
    lines = _marks(root, "polyline", "line")
    assert len(lines) == 2
    assert [len(pl.get("points").split()) for pl in lines] == [2, 4]
    single = _parse(line_chart(["2024-03-05"], {"m": [0.5]}))
    assert len(_marks(single, "circle", "point")) == 1
    with pytest.raises(ValueError):
        line_chart(["x"], {"m": [1, 2]})


def test_popularity_stats() -> None:
    st = popularity_stats([50, 20, 10, 5, 5, 3, 3, 2, 1, 1])
    assert st["items"] == 10 and st["events"] == 100 and st["singletons"] == 2
    assert st["top10"] == pytest.approx(0.5) and st["top20"] == pytest.approx(0.7)


# --------------------------------------------------------------------------------------------- report


def _make_warehouse(tmp_path: Path) -> Home:
    home = Home(tmp_path / "home").ensure()
    con = connect(home)
    con.execute(RECS_DDL)
    now = datetime(2024, 3, 6, 2, 0)
    # Anonymous clicks (no user_id at all), days 03-01..03-05; item i0 very popular, long tail after.
    clicks = []
    for d in range(5):
        day = date(2024, 3, 1) + timedelta(days=d)
        for s in range(4):
            for p, item in enumerate(["i0", "i0", f"i{1 + s}", f"i{5 + d}"]):
                ts = datetime(day.year, day.month, day.day, 10, s, p)
                clicks.append(
                    (f"s{d}-{s}", None, item, "click", None, ts, day, f"f{d}.csv", 2 + p, f"ing-{d}", now)
                )
    con.executemany("INSERT INTO raw.clicks (session_id, user_id, item_id, event_type, category, ts, event_date, source_file, source_row, run_id, ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", clicks)
    con.execute(
        "INSERT INTO ops.ingest_files (run_id, source_file, path, profile, day, day_to, sha256, size_bytes, rows_read,"
        " rows_accepted, rows_quarantined, rows_duplicate, rows_other_days, min_ts, max_ts, ingested_at)"
        " VALUES ('ing-4', 'f4.csv', '/in/f4.csv', 'rsc15', DATE '2024-03-05', DATE '2024-03-05', 'ab', 1,"
        " 1234, 1200, 30, 4, 0, TIMESTAMP '2024-03-05 00:00', TIMESTAMP '2024-03-05 23:00', TIMESTAMP '2024-03-06 01:00')"
    )
    con.execute(
        "INSERT INTO ops.validation_results VALUES"
        " ('ing-4', 'f4.csv', 'expect_column_values_to_not_be_null', 'item_id', 'row', false, NULL, 7, 1234, NULL,"
        "  TIMESTAMP '2024-03-06 01:00'),"
        " ('ing-4', 'f4.csv', 'expect_table_row_count_to_be_between', NULL, 'table', true, '1234', NULL, NULL, NULL,"
        "  TIMESTAMP '2024-03-06 01:00')"
    )
    con.execute(
        "INSERT INTO quarantine.clicks (source_file, source_row, reason, run_id, quarantined_at) VALUES"
        " ('f4.csv', 9, 'bad_ts: not a timestamp', 'ing-4', TIMESTAMP '2024-03-06 01:00'),"
        " ('f4.csv', 10, 'bad_ts: not a timestamp', 'ing-4', TIMESTAMP '2024-03-06 01:00'),"
        " ('f4.csv', 11, 'null_item', 'ing-4', TIMESTAMP '2024-03-06 01:00'),"
        " ('old.csv', 1, 'ancient_reason', 'ing-old', TIMESTAMP '2023-01-01 01:00')"
    )
    runs = [
        ("gru4rec", "g-2", "published", None, 812.5),
        ("narm", "n-2", "rejected", "HR@20 0.1100 below pop baseline 0.1500", 95.25),
        ("neumf", "u-2", "failed", "no users in window", None),
    ]
    for model, version, status, reason, secs in runs:
        con.execute(
            "INSERT INTO models.model_runs (run_id, model, version, run_date, trained_at, window_start, window_end,"
            " train_seconds, status, gate_reason) VALUES ('night', ?, ?, ?, ?, DATE '2024-03-01', DATE '2024-03-04',"
            " ?, ?, ?)",
            [model, version, NIGHT, now, secs, status, reason],
        )
    metrics = {"HR@10": 0.2345, "HR@20": 0.3456, "MRR@20": 0.1234, "NDCG@10": 0.1567, "COV@20": 0.4321}
    for model, version, hr20 in (("gru4rec", "g-2", 0.3456), ("narm", "n-2", 0.1100)):
        for name, value in (metrics | {"HR@20": hr20}).items():
            metric, k = name.split("@")
            con.execute(
                "INSERT INTO models.eval_metrics VALUES ('night', ?, ?, ?, 'P4-session', ?, ?, ?)",
                [model, version, NIGHT, metric, int(k), value],
            )
        con.execute(
            "INSERT INTO models.eval_metrics VALUES ('night', ?, ?, ?, 'P4-session', 'n_predictions', NULL, 4321)",
            [model, version, NIGHT],
        )
    # Earlier nights of gru4rec for the history chart (one later night that must not show).
    for d, v in ((date(2024, 3, 3), 0.30), (date(2024, 3, 4), 0.32), (date(2024, 3, 9), 0.99)):
        con.execute(
            "INSERT INTO models.eval_metrics VALUES ('old', 'gru4rec', 'g-old', ?, 'P4-session', 'HR', 20, ?)",
            [d, v],
        )
    # Sessions: lengths 2 (x3), 3 (x1), 45 (x2, lands in the 30+ bucket).
    for i, n in enumerate([2, 2, 2, 3, 45, 45]):
        con.execute(
            "INSERT INTO features.sessions (session_no, session_id, start_ts, end_ts, length) VALUES (?, ?, ?, ?, ?)",
            [i + 1, f"s{i}", now, now, n],
        )
    for i in range(10):
        con.execute("INSERT INTO features.item_vocab VALUES (?, ?, ?, ?, 1)", [f"i{i}", i, now, now])
    # session_next covers 3 of 10 items; user_topn empty for the night (an older night has rows).
    con.execute(
        "INSERT INTO recs.session_next VALUES (?, 'gru4rec', 'g-2', 's1', 1, 'i0', 0.9),"
        " (?, 'gru4rec', 'g-2', 's1', 2, 'i1', 0.8), (?, 'gru4rec', 'g-2', 's2', 1, 'i2', 0.7)",
        [NIGHT, NIGHT, NIGHT],
    )
    con.execute("INSERT INTO recs.user_topn VALUES (DATE '2024-03-01', 'neumf', 'u-1', 'u9', 1, 'i0', 1.0)")
    # The rejected narm scored sessions too (candidates only): 1 distinct item of 10.
    con.execute(
        "INSERT INTO recs.candidate_session_next VALUES (?, 'narm', 'n-2', 's1', 1, 'i7', 0.5)", [NIGHT]
    )
    con.close()
    return home


@pytest.fixture()
def home(tmp_path: Path) -> Home:
    return _make_warehouse(tmp_path)


def _text(html: str) -> str:
    """Visible text, tags removed, whitespace collapsed (assertions on what a reader sees)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_build_report_content(home: Home) -> None:
    path = build_report(
        home,
        NIGHT,
        run_id="night-1",
        stage_seconds={"ingest": 12.0, "train": 907.75},
        notes=["flow says: user models skipped"],
    )
    assert path == home.reports / "2024-03-05" / "index.html"
    html = path.read_text()
    text = _text(html)
    assert not list(path.parent.glob("*.tmp"))  # atomic write left no temp file

    # 1. volumes (16 rows a day), ingest accounting, failed expectation, quarantine by reason (window only).
    assert "2024-03-05 16 4 0 6" in text  # day, rows, sessions, rows with user_id, items
    assert "2024-02-29 0 0 0 0" in text  # days without rows in the 14-day window are shown as 0
    volumes = html.split("1. Data volumes")[1].split("<h3>")[0]
    day_bars = _marks(ET.fromstring(re.search(r"<svg.*?</svg>", volumes, flags=re.S).group(0)), "rect", "bar")
    assert len(day_bars) == 14
    assert "ing-4 2024-03-05 1 1,234 1,200 30 4 0" in text
    assert "2 expectation results, 1 failed" in text
    assert "expect_column_values_to_not_be_null item_id row 7 1,234" in text
    assert "bad_ts 2" in text and "null_item 1" in text and "ancient_reason" not in text

    # 2. metrics pivoted with the gate's decision and reason; the failed run without metrics too.
    assert "gru4rec g-2 P4-session 0.2345 0.3456 0.1234 0.1567 0.4321 4,321 published" in text
    assert (
        "narm n-2 P4-session 0.2345 0.1100 0.1234 0.1567 0.4321 4,321 rejected HR@20 0.1100 below pop baseline 0.1500"
        in text
    )
    assert "neumf u-2 – – – – – – failed no users in window" in text

    # 3. history: gru4rec HR@20 on 3 nights up to the report night (not the later 03-09).
    history = html.split("3. Primary metric")[1].split("<h2>")[0]
    svgs = [ET.fromstring(s) for s in re.findall(r"<svg.*?</svg>", history, flags=re.S)]
    gru = next(s for s in svgs if "gru4rec" in s.find(f"{SVG}title").text)
    assert len(_marks(gru, "circle", "point")) == 3
    assert "0.99" not in history

    # 4. popularity (training window 03-01..03-04 from model_runs: 64 events, i0 holds 32) + coverage 3/10.
    assert "2024-03-01 .. 2024-03-04 (models.model_runs)" in text
    assert "9 64 50.0% 50.0%" in text  # items, events, top 1% and top 10% share (i0)
    assert "recs.session_next gru4rec g-2 3 2 3 30.0%" in text
    assert "recs.candidate_session_next narm n-2 1 1 1 10.0%" in text

    # 5. session histogram: buckets 2, 3, 30+.
    sessions = html.split("5. Session lengths")[1].split("<h2>")[0]
    bars = _marks(ET.fromstring(re.search(r"<svg.*?</svg>", sessions, flags=re.S).group(0)), "rect", "bar")
    assert [b.find(f"{SVG}title").text for b in bars] == ["2: 3", "3: 1", "30+: 2"]

    # 6. training time and stages.
    assert "gru4rec g-2 published 812.5 s" in text and "train 907.8 s" in text

    # 7. notes: the flow's and the detected missing user ids, in the notes box at the top.
    notes = html.split('<div class="notes">')[1].split("</div>")[0]
    assert "flow says: user models skipped" in notes
    assert "recs.user_topn has no rows for 2024-03-05: the source has no user ids" in _text(notes)
    assert "1 of 2 expectations failed" in _text(notes)


def test_gate_list_overrides_and_hostile_values_are_escaped(home: Home) -> None:
    gate = [
        {"model": "narm", "version": "n-2", "decision": "rejected", "reason": f"worse than pop {HOSTILE}"},
        {"model": HOSTILE, "version": "x&1", "decision": "rejected", "reason": "<b>bold</b>"},
    ]
    html = build_report(home, NIGHT, gate=gate, notes=[HOSTILE]).read_text()
    assert "<script" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    # The gate list wins over models.model_runs.gate_reason; hostile model gets its own (escaped) row.
    assert "rejected</td><td>worse than pop &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</td>" in html
    assert "<td>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</td><td>x&amp;1</td>" in html
    assert "HR@20 0.1100 below pop baseline" not in html
    assert "x&amp;1" in html


def test_user_ids_present_means_no_missing_ids_claim(tmp_path: Path) -> None:
    home = _make_warehouse(tmp_path)
    con = connect(home)
    con.execute("UPDATE raw.clicks SET user_id = 'u' || session_id WHERE event_date = DATE '2024-03-02'")
    con.close()
    text = _text(build_report(home, NIGHT).read_text())
    assert "the source has no user ids" not in text
    assert "recs.user_topn has no rows for 2024-03-05: raw.clicks has 16 events of 4 users" in text
    con = connect(home)
    con.execute(
        "INSERT INTO recs.candidate_user_topn VALUES (?, 'neumf', 'u-2', 'us0-1', 1, 'i0', 1.0)", [NIGHT]
    )
    con.close()
    text = _text(build_report(home, NIGHT).read_text())
    assert "user models scored users (recs.candidate_user_topn) but the gate published none" in text


def test_missing_layers_are_skipped_not_fatal(tmp_path: Path) -> None:
    # A warehouse with only the ingest layer: the report still renders and says what is missing.
    home = Home(tmp_path / "h").ensure()
    con = connect(home)
    for t in ("features", "models", "recs"):
        con.execute(f"DROP SCHEMA IF EXISTS {t} CASCADE")
    con.close()
    data = load_report_data(home, NIGHT)
    assert any("models.eval_metrics" in s for s in data.skipped)
    text = _text(build_report(home, NIGHT).read_text())
    assert "Skipped:" in text and "raw.clicks has no rows for the night 2024-03-05" in text


def test_publish_outside_a_run_does_nothing(home: Home) -> None:
    assert publish_report_artifacts(home, NIGHT) == []


def test_artifacts_carry_the_same_numbers(home: Home, prefect_harness) -> None:
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    @flow
    def nightly_report() -> Path:
        return build_report_task(
            home,
            NIGHT,
            gate=[{"model": "narm", "version": "n-2", "decision": "rejected", "reason": "gate says no"}],
        )

    state = nightly_report(return_state=True)
    path = state.result()
    assert path.exists() and "gate says no" in path.read_text()
    # Other tests in the session run nightly flows too: take this flow run's artifacts only.
    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        arts = {
            key: [a for a in client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
                  if a.flow_run_id == run_id]
            for key in (REPORT_ARTIFACT_KEY, METRICS_ARTIFACT_KEY)
        }
    md = arts[REPORT_ARTIFACT_KEY][0].data
    assert str(path) in md and "gate says no" in md and "the source has no user ids" in md
    table = str(arts[METRICS_ARTIFACT_KEY][0].data)
    assert "0.3456" in table and "0.11" in table and "gate says no" in table


def test_artifacts_payloads_without_a_server(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fast check of what is sent (keys, JSON-able table, same rounding as the page), no Prefect API."""
    import json

    import prefect.artifacts

    import tasks.report.html as report

    sent: dict[str, dict] = {}

    def capture(kind: str):
        def create(**kwargs):
            sent[kind] = kwargs
            return kind

        return create

    monkeypatch.setattr(report, "_in_prefect_run", lambda: True)
    monkeypatch.setattr(prefect.artifacts, "create_markdown_artifact", capture("md"))
    monkeypatch.setattr(prefect.artifacts, "create_table_artifact", capture("table"))
    path = build_report_task.fn(home, NIGHT, stage_seconds={"train": 1.0})
    assert set(sent) == {"md", "table"}
    for kw in sent.values():
        assert re.fullmatch(r"[a-z0-9-]+", kw["key"])
    rows = json.loads(json.dumps(sent["table"]["table"]))
    narm = next(r for r in rows if r["model"] == "narm")
    assert narm["HR@20"] == 0.11 and narm["decision"] == "rejected" and narm["n_predictions"] == 4321
    assert "HR@20 0.1100 below pop baseline 0.1500" in narm["reason"]
    md = sent["md"]["markdown"]
    assert str(path) in md and "raw.clicks rows on 2024-03-05: 16" in md
    assert "read 1,234, accepted 1,200, quarantined 30, duplicates 4" in md and "1 failed" in md
