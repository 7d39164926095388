"""Profiles for logs in the wild: null values, composed timestamps, event types kept / renamed /
weighted, multi-character delimiters, nested JSON keys, guard-rail settings, and the six built-in
profiles, each loading a fixture the project writes itself (tests/wild_fixtures.py) through the
real ingest (real DuckDB files, the real Great Expectations suite)."""

from __future__ import annotations

import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import wild_fixtures as wf  # noqa: E402

from tasks.common.config import Home  # noqa: E402
from tasks.common.profiles import (  # noqa: E402
    PROFILE_DIR,
    Guards,
    ProfileError,
    load_profile,
    parse_profile,
    typed_batch_params,
)
from tasks.common.sqlfiles import sql  # noqa: E402
from tasks.common.warehouse import scratch_config  # noqa: E402
from tasks.ingest.run import ingest  # noqa: E402
from tasks.ingest.validate import ValidationRules  # noqa: E402

BUILT_IN = ("retailrocket", "diginetica", "movielens1m", "yoochoose-buys", "taobao", "amazon-reviews")


def ms(value: int) -> datetime:
    return datetime(1970, 1, 1) + timedelta(milliseconds=value)


def secs(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home.resolve(tmp_path / "home")


def clicks(home: Home) -> list[tuple]:
    con = duckdb.connect(str(home.db), read_only=True)
    try:
        return con.execute(
            "SELECT source_row, session_id, user_id, item_id, event_type, category, ts, weight "
            "FROM raw.clicks ORDER BY source_row"
        ).fetchall()
    finally:
        con.close()


def counts(rep) -> tuple[int, int, int, int, int, int]:
    t = rep.totals
    return (t["rows_read"], t["rows_accepted"], t["rows_filtered"], t["rows_quarantined"], t["rows_duplicate"],
            t["rows_blank"])


# ---------------------------------------------------------------- parsing: every key, every refusal


def test_builtin_profiles_parse_with_their_settings():
    assert {p.stem for p in PROFILE_DIR.glob("*.toml")} >= set(BUILT_IN)
    dig = load_profile("diginetica")
    assert (dig.ts_offset_column, dig.ts_offset_unit, dig.null_values) == ("timeframe", "ms", ("NA",))
    assert dig.nulls_for("user_id") == ("", "NA")
    assert load_profile("movielens1m").delimiter == "::"
    tao = load_profile("taobao")
    assert tao.rename_event_types == {"pv": "view", "buy": "purchase"}
    assert tao.keep_event_types == ("view", "fav", "cart", "purchase")
    assert tao.event_weights["purchase"] == 5.0 and tao.event_types == frozenset(tao.keep_event_types)
    assert load_profile("amazon-reviews").fields["category"] == "style.Format:"
    assert load_profile("yoochoose").guards == Guards(0.05, 0.5, 0.05)
    assert load_profile("yoochoose").ts_offset_column is None


def _doc(**extra) -> dict:
    return {"format": "csv", "header": True, "fields": {"session_id": "s", "item_id": "i", "ts": "t"}} | extra


def test_profile_keys_parse_and_feed_the_sql_parameters():
    prof = parse_profile(_doc(
        delimiter="||",
        null_values=["NA", "\\N"],
        field_null_values={"item_id": ["0"], "category": []},
        timestamp={"kind": "iso8601", "offset_column": "off", "offset_unit": "us"},
        events={"keep": ["view", "purchase"], "rename": {"pv": "view"}, "weights": {"purchase": 4},
                "default_weight": 0.5},
        guards={"max_duplicate_share": 0.2, "max_null_key_share": 0},
    ))
    assert prof.delimiter == "||"
    assert prof.guards == Guards(max_duplicate_share=0.2, max_filtered_share=0.5, max_null_key_share=0.0)
    p = typed_batch_params(prof)
    assert p["null_user_id"] == ["", "NA", "\\N"] and p["null_ts_offset"] == ["", "NA", "\\N"]
    assert p["null_item_id"] == ["", "0"] and p["null_category"] == [""]  # a field's own list replaces the global
    assert (p["has_offset"], p["offset_us"]) == (True, 1)
    assert (p["rename_from"], p["rename_to"], p["keep_types"]) == (["pv"], ["view"], ["view", "purchase"])
    assert (p["weight_types"], p["weight_values"], p["default_weight"]) == (["purchase"], [4.0], 0.5)
    assert "source_file" not in p
    assert {"default_event_type", "ts_kind", "ts_format", "timezone", "dedupe"} <= set(p)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"delimiter": ""}, "delimiter"),
        ({"delimiter": "a\nb"}, "delimiter"),
        ({"null_values": "NA"}, "null_values must be a list"),
        ({"field_null_values": {"user": ["NA"]}}, "unknown field"),
        ({"timestamp": {"offset_column": "off", "offset_unit": "min"}}, "offset_unit"),
        ({"timestamp": {"offset_unit": "ms"}}, "without timestamp.offset_column"),
        ({"timestamp": {"ofset_column": "off"}}, "unknown [timestamp] key"),
        ({"events": {"keep": ["view"], "weights": {"buy": 2.0}}}, "keep filters out"),
        ({"events": {"weights": {"view": -1}}}, ">= 0"),
        ({"events": {"rename": {"pv": ""}}}, "rename"),
        ({"events": {"drop": ["x"]}}, "unknown [events] key"),
        ({"guards": {"max_duplicate_share": 5}}, "between 0 and 1"),
        ({"guards": {"max_dup": 0.1}}, "unknown [guards] key"),
        ({"null_value": ["NA"]}, "unknown key"),
    ],
)
def test_profile_mistakes_are_refused_with_one_line(extra, message):
    with pytest.raises(ProfileError) as exc:
        parse_profile(_doc(**extra))
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_headerless_offset_column_must_be_a_column_and_json_keys_need_parts():
    with pytest.raises(ProfileError, match="offset_column 'off' is not in 'columns'"):
        parse_profile({"format": "csv", "columns": ["s", "i", "t"], "fields": {"session_id": "s", "item_id": "i", "ts": "t"},
                       "timestamp": {"offset_column": "off"}})
    with pytest.raises(ProfileError, match="empty part"):
        parse_profile({"format": "jsonl", "fields": {"session_id": "s", "item_id": "a..b", "ts": "t"}})


# ------------------------------------------- the one pass (batch.sql) on hand-filled text fields

FIELDS_DDL = """CREATE TEMP TABLE landing_fields (source_row BIGINT, session_id VARCHAR, user_id VARCHAR,
    item_id VARCHAR, event_type VARCHAR, category VARCHAR, ts VARCHAR, ts_offset VARCHAR, line_reason VARCHAR,
    raw_line VARCHAR)"""


def _typed(profile, rows: list[tuple]) -> list[dict]:
    """Run batch.sql and duplicates.sql on text fields (source_row, session, user, item, type, category,
    ts, offset). No id may be longer than 0 characters here, so every kept row is rejected and keeps
    its raw text (the one pass keeps raw text for rejected rows only)."""
    con = duckdb.connect(":memory:", config=scratch_config())  # the scratch databases' settings
    try:
        con.execute("CREATE SCHEMA staging")
        con.execute(FIELDS_DDL)
        con.executemany("INSERT INTO landing_fields VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)", rows)
        typing = {k: v for k, v in typed_batch_params(profile).items() if k != "dedupe"}
        rules = ValidationRules(id_max_chars=0, max_ts=datetime(2100, 1, 1))  # every id fails: all rejected
        con.execute(sql("staging/batch_table"))
        con.execute(sql("staging/batch"), typing | rules.check_params())
        con.execute(sql("staging/duplicates"), {"dedupe": profile.dedupe})
        cur = con.execute("SELECT b.*, d.source_row IS NOT NULL AS is_duplicate FROM staging.batch AS b "
                          "LEFT JOIN staging.duplicates AS d USING (source_row) ORDER BY source_row")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def test_typed_batch_nulls_renames_weights_filter_and_composed_ts():
    prof = parse_profile(_doc(
        fields={"session_id": "s", "user_id": "u", "item_id": "i", "event_type": "e", "ts": "t"},
        null_values=["NA", "\\N"],
        field_null_values={"item_id": ["-1"]},
        timestamp={"kind": "iso8601", "timezone": "Europe/Berlin", "offset_column": "off", "offset_unit": "ms"},
        events={"keep": ["view", "purchase"], "rename": {"pv": "view", "buy": "purchase"},
                "weights": {"purchase": 5.0}},
        defaults={"event_type": "view"},
    ))
    got = _typed(prof, [
        (2, "1", "NA", "10", "pv", None, "2016-05-09", "526309"),
        (3, "1", "\\N", "NA", "buy", None, "2016-05-09", "1288967"),  # item_id has its own list: NA stays
        (4, "1", "7", "-1", "", None, "2016-05-09 10:00:00", "0.5"),
        (5, "1", "7", "11", "share", None, "2016-05-09", "1"),
        (6, "1", "7", "11", "share", None, "2016-05-09", "1"),
        (7, "2", "7", "12", "pv", None, "2016-05-09", "NA"),
        (8, "2", "7", "12", "pv", None, "2016-05-09", "1e30"),
        (9, "2", "", "12", "view", None, "2016-05-09", "526309"),
        (10, "1", "NA", "10", "view", None, "2016-05-09", "526309"),
    ])
    by_row = {r["source_row"]: r for r in got}
    assert len(got) == 9
    r2 = by_row[2]
    assert r2["user_id"] is None and r2["raw_user_id"] == "NA"
    # 2016-05-09 local midnight in Berlin is 2016-05-08 22:00 UTC; plus 526309 ms
    assert r2["ts"] == datetime(2016, 5, 8, 22, 8, 46, 309000)
    assert (r2["event_type"], r2["raw_event_type"], r2["weight"], r2["is_filtered"]) == ("view", "pv", 1.0, False)
    assert (r2["raw_ts"], by_row[7]["raw_ts"]) == ("2016-05-09 + 526309 ms", "2016-05-09 + NA ms")
    assert by_row[3]["user_id"] is None and by_row[3]["item_id"] == "NA"
    assert (by_row[3]["event_type"], by_row[3]["weight"]) == ("purchase", 5.0)
    assert by_row[4]["item_id"] is None and by_row[4]["event_type"] == "view"  # '' -> the default type
    assert by_row[4]["ts"] == datetime(2016, 5, 9, 8, 0, 0, 500)  # 0.5 ms = 500 us
    assert [by_row[r]["is_filtered"] for r in (5, 6)] == [True, True]
    assert [by_row[r]["is_duplicate"] for r in (5, 6)] == [False, False]  # filtered rows are never duplicates
    assert by_row[7]["ts"] is None and by_row[8]["ts"] is None  # missing / absurd offset: no timestamp
    assert by_row[9]["user_id"] is None
    # row 10 equals row 2 once renamed (pv -> view): a duplicate of the canonical event
    assert by_row[10]["is_duplicate"] is True and by_row[2]["is_duplicate"] is False
    assert all(isinstance(r["is_filtered"], bool) for r in got)


def test_typed_batch_without_offset_or_events_keeps_old_behaviour():
    prof = load_profile("yoochoose")
    got = _typed(prof, [(1, "1", None, "5", None, "S", "2014-04-07T10:51:09.277Z", None),
                        (2, "1", None, "5", None, "S", "2014-04-07T10:51:09.277Z", None)])
    assert [(r["event_type"], r["weight"], r["is_filtered"], r["is_duplicate"]) for r in got] == [
        ("click", 1.0, False, False), ("click", 1.0, False, True)]
    assert got[0]["ts"] == datetime(2014, 4, 7, 10, 51, 9, 277000) and got[0]["raw_ts"] == "2014-04-07T10:51:09.277Z"


# -------------------------------------------------- the built-in profiles, through the real ingest


def test_retailrocket(home, tmp_path):
    f = wf.write_retailrocket(tmp_path / "in" / "events.csv")
    rep = ingest(home, load_profile("retailrocket"), [f])
    # read, accepted, filtered, quarantined, duplicates, blank
    assert counts(rep) == (9, 5, 2, 1, 1, 0)
    got = clicks(home)
    assert [r[0] for r in got] == [2, 3, 4, 5, 6]
    assert got[0] == (2, None, "257597", "355908", "view", None, ms(1433221332117), 1.0)
    assert got[3][4:] == ("cart", None, ms(1433221955914), 3.0)
    assert got[4][4:] == ("purchase", None, ms(1433222147345), 5.0)
    assert any("duplicate share" in flag for flag in rep.flags)


def test_diginetica_anonymous_sessions_and_composed_timestamps(home, tmp_path):
    f = wf.write_diginetica(tmp_path / "in" / "train-item-views.csv")
    rep = ingest(home, load_profile("diginetica"), [f])
    assert counts(rep) == (8, 6, 0, 2, 0, 0)
    assert rep.flags == []
    got = clicks(home)
    assert [(r[0], r[1], r[2]) for r in got] == [
        (2, "1", None), (3, "1", None), (4, "1", None), (5, "2", "18278"), (6, "2", "18278"), (7, "3", None)]
    assert [r[6] for r in got] == [
        datetime(2016, 5, 9, 0, 8, 46, 309000),
        datetime(2016, 5, 9, 0, 17, 11, 18000),
        datetime(2016, 5, 9, 0, 21, 28, 967000),
        datetime(2016, 5, 9, 0, 1, 15, 848000),
        datetime(2016, 5, 9, 0, 1, 26, 536000),
        datetime(2016, 5, 11, 1, 1, 52, 199000),
    ]
    assert {r[4] for r in got} == {"view"}
    con = duckdb.connect(str(home.db), read_only=True)
    try:
        q = con.execute("SELECT source_row, raw_user_id, raw_ts FROM quarantine.clicks ORDER BY 1").fetchall()
        assert q == [(8, "NA", "2016-05-10 + NA ms"), (9, "NA", "not-a-date + 1500 ms")]
        assert con.execute("SELECT count(*) FROM raw.clicks WHERE user_id = 'NA'").fetchall() == [(0,)]
    finally:
        con.close()


def test_diginetica_without_the_offset_shows_why_it_matters(home, tmp_path):
    """Finding 11: with the date alone as the timestamp, session 1's second view of item 81766 looks
    like an exact duplicate, and NA becomes a user. The guard rail flags the duplicate share."""
    doc = tomllib.loads((PROFILE_DIR / "diginetica.toml").read_text())
    del doc["timestamp"]["offset_column"], doc["timestamp"]["offset_unit"], doc["null_values"]
    f = wf.write_diginetica(tmp_path / "in" / "train-item-views.csv")
    rep = ingest(home, parse_profile(doc, "diginetica-date-only"), [f])
    assert rep.totals["rows_duplicate"] == 1
    assert any("duplicate share" in flag for flag in rep.flags)
    assert ("NA",) in {(r[2],) for r in clicks(home)}


def test_movielens1m_double_colon(home, tmp_path):
    f = wf.write_movielens1m(tmp_path / "in" / "ratings.dat")
    rep = ingest(home, load_profile("movielens1m"), [f])
    assert counts(rep) == (6, 5, 0, 1, 0, 0)
    got = clicks(home)
    assert [r[0] for r in got] == [1, 2, 3, 4, 6]
    assert got[0] == (1, None, "1", "1193", "rating", None, secs(978300760), 1.0)
    assert got[-1][2:4] == ("6040", "2019") and got[-1][6] == datetime(2000, 4, 25, 23, 5, 32)


def test_yoochoose_buys(home, tmp_path):
    f = wf.write_yoochoose_buys(tmp_path / "in" / "yoochoose-buys.dat")
    rep = ingest(home, load_profile("yoochoose-buys"), [f])
    assert counts(rep) == (5, 4, 0, 0, 1, 0)
    got = clicks(home)
    assert got[0] == (1, "420374", None, "214537888", "purchase", None, datetime(2014, 4, 6, 18, 44, 58, 314000), 5.0)
    assert {r[7] for r in got} == {5.0}


def test_taobao(home, tmp_path):
    f = wf.write_taobao(tmp_path / "in" / "UserBehavior.csv")
    rep = ingest(home, load_profile("taobao"), [f])
    assert counts(rep) == (8, 7, 1, 0, 0, 0), "an event type quarantined? validation must allow profile.event_types (tasks/ingest/validate.py rules_for)"
    got = clicks(home)
    assert [(r[0], r[4], r[7]) for r in got] == [
        (1, "view", 1.0), (2, "view", 1.0), (3, "fav", 2.0), (4, "cart", 3.0), (5, "purchase", 5.0),
        (6, "view", 1.0), (8, "view", 1.0)]
    assert got[0][:4] == (1, None, "1", "2268318") and got[0][5:7] == ("2520377", secs(1511544070))
    assert got[-1][3] == "NA"  # no null_values in this profile: NA is an item id like any other


def test_amazon_reviews_nested_key(home, tmp_path):
    f = wf.write_amazon_reviews(tmp_path / "in" / "Books_5.json")
    rep = ingest(home, load_profile("amazon-reviews"), [f])
    assert counts(rep) == (5, 4, 0, 1, 0, 0), "an event type quarantined? validation must allow profile.event_types (tasks/ingest/validate.py rules_for)"
    got = clicks(home)
    assert [(r[0], r[2], r[3], r[4], r[5], r[7]) for r in got] == [
        (1, "A2SUAM1J3GNN3B", "0000013714", "rating-5", " Hardcover", 5.0),
        (2, "A14VAT5EAX3D9S", "0000013714", "rating-3", " Paperback", 3.0),
        (4, "A14VAT5EAX3D9S", "0005080789", "rating-4", None, 4.0),
        (5, "A1NSNCL4Z2MYYR", "0005080789", "review", None, 1.0),
    ]
    assert got[0][6] == secs(1441065600)


def test_weights_reach_the_interaction_matrix(home, tmp_path):
    """The full path: profile weights -> staging.batch.weight -> raw.clicks.weight -> features."""
    from datetime import date

    from tasks.features.build import FeatureConfig, build_features, load_interaction_matrix

    f = wf.write_retailrocket(tmp_path / "in" / "events.csv")
    ingest(home, load_profile("retailrocket"), [f])
    con = duckdb.connect(str(home.db))
    try:
        day = date(2015, 6, 2)
        build_features(con, day, day, FeatureConfig(min_item_support=1, min_session_length=1,
                                                    derive_sessions_from_user=True))
        users = dict(con.execute("SELECT user_id, user_idx FROM features.user_vocab").fetchall())
        items = dict(con.execute("SELECT item_id, item_idx FROM features.item_vocab").fetchall())
        m = load_interaction_matrix(con, day, day, weighting="weight")
        assert m.nnz == 5
        assert m[users["483717"], items["253185"]] == 3.0  # cart
        assert m[users["951259"], items["367447"]] == 5.0  # purchase (its duplicate dropped at ingest)
        assert m[users["257597"], items["355908"]] == 1.0  # view (its 'search' rows were filtered)
    finally:
        con.close()
