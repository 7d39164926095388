"""Nightly report: the page's structure (HTML parser), its figures on a small hand-made warehouse,
escaping, charts, the night's Data Docs (a real GX site, made readable offline) and the artifacts."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tasks.common.config import Home
from tasks.common.warehouse import connect
from tasks.report.charts import bar_chart, history_chart, model_colours
from tasks.report.gxdocs import MARKER, make_offline, night_pages, offline_html, site_dir
from tasks.report.html import (
    METRICS_ARTIFACT_KEY,
    REPORT_ARTIFACT_KEY,
    build_report,
    build_report_task,
    load_report_data,
    popularity_stats,
    publish_report_artifacts,
)

NIGHT = date(2024, 3, 5)
HOSTILE = '<script>alert("x")</script>'

class Page(HTMLParser):
    """What a reader's browser would meet: sections, figures (with their SVG text), links, scripts."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[str] = []
        self.figures: list[dict] = []  # {"protocol", "texts"}
        self.remote: list[str] = []  # attributes that would make the browser fetch from the network
        self.scripts = 0
        self.links: list[str] = []
        self._svg_depth = 0
        self._text_in_svg = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for name in ("src", "href", "xlink:href", "data", "poster", "srcset"):
            v = a.get(name) or ""
            if re.match(r"\s*(https?:)?//", v) and not (tag == "a" and name == "href"):
                self.remote.append(f"<{tag} {name}={v}>")
        if re.search(r"url\(\s*['\"]?(https?:)?//", a.get("style") or ""):
            self.remote.append(f"<{tag} style>")
        if tag == "script":
            self.scripts += 1
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "section":
            self.sections.append(a.get("id") or "")
        if tag == "figure" and "chart" in (a.get("class") or ""):
            self.figures.append({"protocol": a.get("data-protocol"), "section": self.sections[-1], "texts": []})
        if tag == "svg":
            self._svg_depth += 1
        self._text_in_svg = tag == "text" and self._svg_depth > 0

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._text_in_svg and data.strip():
            self.figures[-1]["texts"].append(data.strip())


# ---------------------------------------------------------------------------------------------- charts


def test_history_chart_has_axis_titles_legend_and_escapes() -> None:
    svg = history_chart({"gru4rec": [(date(2024, 3, 4), 0.3), (date(2024, 3, 5), 0.35)], HOSTILE: [(date(2024, 3, 5), 0.1)]},
                        title="P4-session: HR@20 per night", ylabel="HR@20", ylim=(0.0, 0.5),
                        colours=model_colours(["gru4rec", HOSTILE]))
    page = Page(f'<section id="s"><figure class="chart">{svg}</figure></section>')
    texts = page.figures[0]["texts"]
    assert "night (run date)" in texts and "HR@20" in texts and "P4-session: HR@20 per night" in texts
    assert "gru4rec" in texts and HOSTILE in texts  # legend; the hostile name is text, not markup
    assert "<script" not in svg and page.scripts == 0
    assert "2024-03-05" in texts and "0.5" in texts  # dated x ticks; the shared y limit's top tick


def test_bar_chart_ids_are_unique_per_chart() -> None:
    a = bar_chart(["a", "b"], [1, 2], title="t", xlabel="x", ylabel="y")
    b = bar_chart(["a", "b"], [1, 2], title="t", xlabel="x", ylabel="y")
    ids_a, ids_b = set(re.findall(r'\bid="([^"]+)"', a)), set(re.findall(r'\bid="([^"]+)"', b))
    assert ids_a and not ids_a & ids_b
    # every internal reference points at an id of its own chart
    for svg, ids in ((a, ids_a), (b, ids_b)):
        assert set(re.findall(r'href="#([^"]+)"', svg)) <= ids


def test_popularity_stats() -> None:
    st = popularity_stats([50, 20, 10, 5, 5, 3, 3, 2, 1, 1])
    assert st["items"] == 10 and st["events"] == 100 and st["singletons"] == 2
    assert st["top10"] == pytest.approx(0.5) and st["top20"] == pytest.approx(0.7)


# --------------------------------------------------------------------------------------------- report


def _make_warehouse(tmp_path: Path) -> Home:
    home = Home(tmp_path / "home").ensure()
    con = connect(home)
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
    # Earlier nights of gru4rec for the history chart (one later night that must not show), and a user
    # model on its own protocol: two protocols, two charts.
    for d, v in ((date(2024, 3, 3), 0.30), (date(2024, 3, 4), 0.32), (date(2024, 3, 9), 0.99)):
        con.execute(
            "INSERT INTO models.eval_metrics VALUES ('old', 'gru4rec', 'g-old', ?, 'P4-session', 'HR', 20, ?)",
            [d, v],
        )
    for d, v in ((date(2024, 3, 4), 0.05), (date(2024, 3, 5), 0.07)):
        con.execute("INSERT INTO models.eval_metrics VALUES ('x', 'ease', 'e-1', ?, 'P4-user', 'HR', 10, ?)", [d, v])
    # Beyond-accuracy rows as tasks/train/fit.py writes them (recmodels.beyond's names).
    beyond = [("COVERAGE", 20, 0.3), ("POPULARITY", 20, 0.9125), ("NOVELTY", 20, 7.25), ("TAIL", 20, 0.125),
              ("HR:head", 20, 0.4), ("NDCG:head", 20, 0.2), ("n:head", None, 30), ("HR:tail", 20, 0.05),
              ("NDCG:tail", 20, 0.02), ("n:tail", None, 10), ("HR:len:1", 20, 0.3), ("NDCG:len:1", 20, 0.1),
              ("n:len:1", None, 25), ("HR:len:10+", 20, 0.6), ("NDCG:len:10+", 20, 0.3), ("n:len:10+", None, 15),
              ("HR:len:3-4", 20, 0.25), ("NDCG:len:3-4", 20, 0.125), ("n:len:3-4", None, 5)]
    for metric, k, value in beyond:
        con.execute("INSERT INTO models.eval_metrics VALUES ('night', 'gru4rec', 'g-2', ?, 'P4-session', ?, ?, ?)",
                    [NIGHT, metric, k, value])
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
        "INSERT INTO recs.recommendations VALUES ('session_next', ?, 'gru4rec', 'g-2', 's1', 1, 'i0', 0.9),"
        " ('session_next', ?, 'gru4rec', 'g-2', 's1', 2, 'i1', 0.8),"
        " ('session_next', ?, 'gru4rec', 'g-2', 's2', 1, 'i2', 0.7)",
        [NIGHT, NIGHT, NIGHT],
    )
    con.execute("INSERT INTO recs.recommendations VALUES "
                "('user_topn', DATE '2024-03-01', 'neumf', 'u-1', 'u9', 1, 'i0', 1.0)")
    # The rejected narm scored sessions too (candidates only): 1 distinct item of 10.
    con.execute(
        "INSERT INTO recs.candidates VALUES ('session_next', ?, 'narm', 'n-2', 's1', 1, 'i7', 0.5)", [NIGHT]
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

    # 1. volumes (16 rows a day) from the first day with data, 03-01, not from the window's start 02-21;
    # ingest accounting, failed expectation, quarantine by reason (window only).
    assert "2024-03-05 16 4 0 6" in text  # day, rows, sessions, rows with user_id, items
    assert "2024-03-01 16 4 0" in text and "2024-02-29" not in text
    volumes = next(f for f in Page(html).figures if f["section"] == "volumes")
    assert "2024-03-01" in volumes["texts"] and "2024-02-29" not in volumes["texts"]
    assert "accepted rows" in volumes["texts"] and "event date" in volumes["texts"]
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

    # 3. history: one chart per protocol with its models, up to the report night (not the later 03-09).
    history = [f for f in Page(html).figures if f["section"] == "history"]
    assert [f["protocol"] for f in history] == ["P4-session", "P4-user"]
    session_chart, user_chart = (f["texts"] for f in history)
    assert {"gru4rec", "narm"} <= set(session_chart) and "ease" not in session_chart
    assert "ease" in user_chart and "HR@10" in user_chart and "HR@20" in session_chart
    assert "2024-03-09" not in " ".join(session_chart)

    # 4. beyond accuracy at the protocol's k, and the segments in their order (head, tail, lengths)
    assert "gru4rec g-2 P4-session 20 30.0% 91.2% 7.25 12.5%" in text
    segs = html.split('<table class="segments">')[1].split("</table>")[0]
    assert _text(segs).split("HR@20")[0].split() == ["gru4rec", "g-2", "(P4-session,", "k=20)", "head", "tail",
                                                      "len:1", "len:3-4", "len:10+"]
    assert "HR@20 0.4000 0.0500 0.3000 0.2500 0.6000" in _text(segs)
    assert "predictions 30 10 25 5 15" in _text(segs)

    # 5. popularity (training window 03-01..03-04 from model_runs: 64 events, i0 holds 32) + coverage 3/10.
    assert "2024-03-01 .. 2024-03-04 (models.model_runs)" in text
    assert "9 64 50.0% 50.0%" in text  # items, events, top 1% and top 10% share (i0)
    assert "recs.recommendations: session_next gru4rec g-2 3 2 3 30.0%" in text
    assert "recs.candidates: session_next narm n-2 1 1 1 10.0%" in text

    # 6. session histogram: buckets 2, 3, 30+ (axis labels and table).
    sessions = next(f for f in Page(html).figures if f["section"] == "sessions")["texts"]
    assert {"2", "3", "30+", "session length (clicks)", "sessions"} <= set(sessions)
    assert "2 3 50.0% 3 1 16.7% 30+ 2 33.3%" in text

    # 7. training time and stages.
    assert "gru4rec g-2 published 812.5 s" in text and "train 907.8 s" in text

    # 7. notes: the flow's and the detected missing user ids, in the notes box at the top.
    notes = html.split('<div class="notes">')[1].split("</div>")[0]
    assert "flow says: user models skipped" in notes
    assert "recs.recommendations has no user_topn rows for 2024-03-05: the source has no user ids" in _text(notes)
    assert "1 of 2 expectations failed" in _text(notes)


def test_gate_list_overrides_and_hostile_values_are_escaped(home: Home) -> None:
    gate = [
        {"model": "narm", "version": "n-2", "decision": "rejected", "reason": f"worse than pop {HOSTILE}"},
        {"model": HOSTILE, "version": "x&1", "decision": "rejected", "reason": "<b>bold</b>"},
    ]
    html = build_report(home, NIGHT, gate=gate, notes=[HOSTILE]).read_text()
    assert "<script" not in html and "<b>bold" not in html and Page(html).scripts == 0
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html  # markupsafe's escaping
    # What a reader sees: the hostile strings as text. The gate list wins over model_runs.gate_reason;
    # the hostile model gets its own row.
    text = unescape(_text(html))
    assert f"rejected worse than pop {HOSTILE}" in text
    assert f"{HOSTILE} x&1" in text and "<b>bold</b>" in text
    assert "HR@20 0.1100 below pop baseline" not in text


def test_user_ids_present_means_no_missing_ids_claim(tmp_path: Path) -> None:
    home = _make_warehouse(tmp_path)
    con = connect(home)
    con.execute("UPDATE raw.clicks SET user_id = 'u' || session_id WHERE event_date = DATE '2024-03-02'")
    con.close()
    text = _text(build_report(home, NIGHT).read_text())
    assert "the source has no user ids" not in text
    assert "recs.recommendations has no user_topn rows for 2024-03-05: raw.clicks has 16 events of 4 users" in text
    con = connect(home)
    con.execute(
        "INSERT INTO recs.candidates VALUES ('user_topn', ?, 'neumf', 'u-2', 'us0-1', 1, 'i0', 1.0)", [NIGHT]
    )
    con.close()
    text = _text(build_report(home, NIGHT).read_text())
    assert "user models scored users (recs.candidates: user_topn) but the gate published none" in text


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


# ------------------------------------------------------------------------------- structure, Data Docs


def test_page_structure_is_self_contained(home: Home) -> None:
    """What CI can check without a browser: every section, one chart per protocol, axis titles on
    every chart, no script and nothing fetched from the network."""
    page = Page(build_report(home, NIGHT, stage_seconds={"ingest": 1.0, "train": 2.0}).read_text())
    assert page.sections == ["volumes", "metrics", "history", "beyond", "popularity", "sessions", "timings"]
    history = [f for f in page.figures if f["section"] == "history"]
    assert sorted(f["protocol"] for f in history) == ["P4-session", "P4-user"]  # one chart per protocol
    assert len(page.figures) == 7  # volumes, 2 history, popularity, sessions, training time, stages
    axis_titles = {"volumes": {"event date", "accepted rows"}, "history": {"night (run date)"},
                   "popularity": {"item popularity rank (1 = most clicked)", "events in the training window"},
                   "sessions": {"session length (clicks)", "sessions"}, "timings": {"seconds"}}
    for f in page.figures:
        assert axis_titles[f["section"]] <= set(f["texts"]), f["section"]
    assert page.remote == [] and page.scripts == 0


@pytest.fixture(scope="module")
def gx_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real GX Data Docs site: the ingest run ing-4 of the fixture night validated by GX 1.24
    (two real ingest runs; each builds its Data Docs under home/gx)."""
    from tasks.common.profiles import load_profile
    from tasks.ingest.run import ingest

    root = tmp_path_factory.mktemp("gx")
    home = Home.resolve(root / "home")
    for run_id, name in (("ing-4", "f4.csv"), ("ing-other", "other.csv")):
        f = root / name
        f.write_text("".join(f"{i},2024-03-01T12:00:{i:02d}Z,{100 + i},0\n" for i in range(1, 11)))
        ingest(home, load_profile("yoochoose"), [f], run_id=run_id)
    return home.gx


def test_gx_pages_as_built_fetch_from_cdns(gx_site: Path) -> None:
    """The reason for gxdocs: GX's own pages load their styles and scripts from the network."""
    index = (site_dir(gx_site) / "index.html").read_text()
    if MARKER in index:  # another test of this module already rewrote the shared site
        pytest.skip("site already rewritten")
    assert Page(index).remote and Page(index).scripts


def test_report_links_the_nights_data_docs_and_makes_them_offline(home: Home, gx_site: Path) -> None:
    import shutil

    shutil.copytree(gx_site, home.gx, dirs_exist_ok=True)
    pages, index = night_pages(home.gx, ["ing-4"])
    assert sorted(p.suite for p in pages) == ["clickrec_batch_days", "clickrec_batch_rows", "clickrec_batch_table"]
    path = build_report(home, NIGHT)
    page = Page(path.read_text())
    docs = [h for h in page.links if "data_docs" in h]
    # the night's three validation pages and the index, relative to the report, none of ing-other
    assert len(docs) == 4 and not any("ing-other" in h for h in docs)
    for href in docs:
        target = (path.parent / href).resolve()
        assert target.is_file(), href
        linked = Page(target.read_text())
        assert linked.remote == [], (href, linked.remote)
        assert not any(s for s in re.findall(r"<script[^>]*src=", target.read_text()))
    css = site_dir(home.gx) / "static" / "styles" / "clickrec_offline.css"
    assert css.is_file() and ".fa-check-circle::before" in css.read_text()
    # idempotent: a second night's report rewrites nothing it already rewrote
    assert make_offline(home.gx, [p.path for p in pages]) == 0


def test_offline_html_keeps_content_and_local_links() -> None:
    html = ('<html><head><link rel="stylesheet" href="https://cdn.example/b.css">'
            '<script src="https://cdn.example/j.js"></script><style>a{background:url("https://x/y.png")}</style>'
            '</head><body><img src="https://s3/logo.png?id=1"><a href="https://docs">docs</a>'
            '<script>inline()</script><p>content</p></body></html>')
    out = offline_html(html, "../static/c.css", "../static/logo.png")
    assert MARKER in out and '<link rel="stylesheet" href="../static/c.css">' in out
    assert "cdn.example" not in out and "https://x/y.png" not in out and 'src="../static/logo.png"' in out
    assert '<a href="https://docs">docs</a>' in out and "<p>content</p>" in out  # a link is no fetch
    assert offline_html(out, "other.css", "x.png") == out


def test_a_failed_run_of_the_night_leads_the_notes(home: Home) -> None:
    con = connect(home)
    con.execute("INSERT INTO ops.flow_failures VALUES ('fr-1', 'nightly', 'nightly-2024-03-05', ?, 'Crashed', "
                "'worker lost <b>contact</b>', TIMESTAMP '2024-03-06 02:10:00')", [NIGHT])
    con.execute("INSERT INTO ops.flow_failures VALUES ('fr-0', 'nightly', 'nightly-2024-03-04', DATE '2024-03-04', "
                "'Failed', 'another night', TIMESTAMP '2024-03-05 02:10:00')")
    con.close()
    text = _text(build_report(home, NIGHT, run_id="night-2", notes=["flow note"]).read_text())
    assert "failed run: nightly nightly-2024-03-05 (Crashed, 2024-03-06 02:10 UTC): worker lost &lt;b&gt;contact&lt;/b&gt;" in text
    assert text.index("failed run: nightly") < text.index("flow note")
    assert "another night" not in text  # only this night's failures
