"""sql/ as data layers, and the column dictionary held against the live schema of real DuckDB files.

The published file is built by the real publish code (candidates -> promote -> build_published) on a
small night; the working-database layers are checked against a real clickrec.duckdb. Each check names
the table and column it is about, so a failure says what to fix in which columns.yaml.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pytest

from tasks.common import warehouse
from tasks.common.config import Home
from tasks.publish import dictionary
from tasks.publish.published import build_published, migrate_legacy_tables, promote, write_candidates

REPO = Path(__file__).resolve().parent.parent
SQL = REPO / "sql"
NIGHT = date(2024, 3, 5)
ITEMS = [f"item-{i}" for i in range(8)]
# Layers whose folders this step owns; ingest/ and validate/ (the staging SQL) keep their own rules.
LAYER_FOLDERS = ("warehouse", "staging", "features", "models", "recs", "published", "ops", "analyst", "report", "bench")
# Files that are DDL or a fixed sequence by nature (several statements): why each is allowed.
MULTI_STATEMENT = {
    "published/schemas.sql": "the published file's three schemas",
    "recs/legacy_drop.sql": "drops the six per-kind tables of the old layout, one transaction",
    "features/clear.sql": "empties the three per-build tables together, inside the build's transaction",
}


def _register(con, model: str, version: str, run_date: date) -> None:
    con.execute("INSERT INTO models.model_runs (run_id, model, version, run_date, trained_at, status) "
                "VALUES ('r', ?, ?, ?, now(), 'trained')", [model, version, run_date])


def published_night(root: Path) -> Home:
    """A real home whose published.duckdb holds one small night of every kind, built by the real code:
    user models ease and neumf, session model gru4rec, autoencoder multvae (user_topn + item_similar)."""
    home = Home(root).ensure()
    con = warehouse.connect(home)
    t = datetime(2024, 3, 1)
    con.executemany("INSERT INTO features.item_vocab VALUES (?, ?, ?, ?, 1)", [(iid, i, t, t) for i, iid in enumerate(ITEMS)])
    con.execute(
        "INSERT INTO raw.clicks (session_id, user_id, item_id, event_type, ts, event_date, source_file, source_row,"
        " run_id, ingested_at) SELECT 's' || (i % 3), 'u' || (i % 2), 'item-' || (i % 8), 'click',"
        " TIMESTAMP '2024-03-05 10:00' + i * INTERVAL 1 MINUTE, DATE '2024-03-05', 'day.csv', i + 2, 'r', now()"
        " FROM range(12) t(i)"
    )
    con.execute("INSERT INTO quarantine.clicks (source_file, source_row, reason, raw_ts, run_id, quarantined_at) "
                "VALUES ('day.csv', 20, 'range_ts: before 2000', '1999-01-01', 'r', TIMESTAMP '2024-03-05 03:00')")
    con.execute("INSERT INTO ops.validation_results (run_id, batch, expectation, level, success, unexpected_count,"
                " element_count, validated_at) VALUES ('r', 'day.csv', 'expect_column_values_to_be_between', 'row',"
                " false, 1, 13, TIMESTAMP '2024-03-05 03:00')")
    rng = np.random.default_rng(0)
    users, sessions = np.array(["u0", "u1"]), np.array(["s0", "s1", "s2"])
    figures = {"ease": ("P4-user", 10, 0.40), "neumf": ("P4-user", 10, 0.30), "gru4rec": ("P4-session", 20, 0.20),
               "multvae": ("P4-similar", 20, 0.10)}
    for model, (protocol, k, value) in figures.items():
        version = f"{model}-1"
        _register(con, model, version, NIGHT)
        con.execute("INSERT INTO models.eval_metrics VALUES ('r', ?, ?, ?, ?, 'HR', ?, ?), "
                    "('r', ?, ?, ?, ?, 'n_predictions', NULL, 12)",
                    [model, version, NIGHT, protocol, k, value, model, version, NIGHT, protocol])
        top = np.stack([rng.permutation(len(ITEMS))[:4] for _ in range(3)])
        scores = np.sort(rng.random((3, 4)).astype(np.float32), axis=1)[:, ::-1].copy()
        if model == "gru4rec":
            write_candidates(con, "session_next", NIGHT, model, version, sessions, top, scores)
        else:
            write_candidates(con, "user_topn", NIGHT, model, version, users, top[:2], scores[:2])
        if model == "multvae":
            write_candidates(con, "item_similar", NIGHT, model, version, np.array([0, 1, 2]), top, scores)
        promote(con, NIGHT, model, version)
    con.close()
    build_published(home)
    return home


@pytest.fixture(scope="module")
def night(tmp_path_factory) -> Home:
    return published_night(tmp_path_factory.mktemp("night") / "home")


def _catalog(con) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in dictionary.live_catalog(con):
        entry = out.setdefault(r["table_name"], {"kind": r["kind"], "comment": r["table_description"], "columns": {}})
        entry["columns"][r["column_name"]] = r
    return out


def _documented(layer: str) -> dict[str, dictionary.Table]:
    return {t.name: t for t in dictionary.tables(layer)}


def test_published_dictionary_matches_the_live_file_and_comments_every_object(night):
    con = warehouse.open_file(night.published_db, "published", read_only=True)
    try:
        live = _catalog(con)
    finally:
        con.close()
    documented = _documented("published")
    assert set(live) - set(documented) == set(), "tables/views in published.duckdb missing from the dictionary"
    assert set(documented) - set(live) == set(), "stale dictionary entries: not in published.duckdb"
    for name, t in documented.items():
        got = live[name]
        assert got["kind"] == t.kind, name
        assert list(got["columns"]) == [c.name for c in t.columns], f"{name}: columns (and their order)"
        for c in t.columns:
            row = got["columns"][c.name]
            assert row["data_type"] == c.type, f"{name}.{c.name}: live {row['data_type']}, documented {c.type}"
            assert row["column_description"] == " ".join(c.description.split()), f"{name}.{c.name}: COMMENT"
        assert got["comment"] and got["comment"] == " ".join(t.description.split()), f"{name}: COMMENT"


@pytest.mark.parametrize("layer", ["staging", "recs", "models"])
def test_working_layer_dictionaries_match_the_live_working_db(tmp_path, layer):
    home = Home(tmp_path / "home").ensure()
    con = warehouse.connect(home)
    try:
        live = _catalog(con)
    finally:
        con.close()
    for name, t in _documented(layer).items():
        assert name in live, f"{layer}: {name} is not in clickrec.duckdb"
        columns = live[name]["columns"]
        assert list(columns) == [c.name for c in t.columns], f"{name}: columns (and their order)"
        for c in t.columns:
            assert columns[c.name]["data_type"] == c.type, f"{name}.{c.name}"
            # The DDL's NOT NULL and the dictionary's unconditional not_null check say the same thing.
            unconditional = any(k.kind == "not_null" and k.arg is None for k in c.checks)
            assert (not columns[c.name]["is_nullable"]) == unconditional, f"{name}.{c.name}: NOT NULL vs not_null"


def test_every_layer_document_names_its_folder_and_database():
    assert {"staging", "recs", "models", "published"} <= set(dictionary.layers())
    for layer in dictionary.layers():
        assert dictionary.tables(layer), layer  # parses, copy_of resolves


def test_column_checks_for_the_validation_suite():
    checks = dictionary.column_checks("staging", "raw.clicks")
    by_kind = {col: {c.kind: c for c in cs} for col, cs in checks.items()}
    assert by_kind["ts"]["between"].arg == {"min": "$min_ts", "max": "$max_ts"}
    assert by_kind["event_type"]["accepted_values"].setting == "event_types"
    assert by_kind["item_id"]["matches"].setting == "id_regex"
    assert by_kind["session_id"]["not_null"].setting == "required"  # only when the profile requires it
    assert by_kind["source_row"]["between"].arg == {"min": 1}
    assert [c.setting for c in checks["category"]] == ["required"]  # checked only when a profile requires it
    with pytest.raises(dictionary.DictionaryError, match="documents no table 'raw.nope'"):
        dictionary.column_checks("staging", "raw.nope")


def test_session_sources_are_described_where_user_ids_appear():
    text = {t.name: t for t in dictionary.tables("published")}
    assert "session" in text["recs.champion_for_users"].description
    user_id = next(c for c in dictionary.table("staging", "raw.clicks").columns if c.name == "user_id")
    assert "Session sources" in user_id.description and "stands in for a user" in user_id.description


def test_a_broken_dictionary_is_one_clear_line(tmp_path, monkeypatch):
    bad = tmp_path / "sql" / "broken"
    bad.mkdir(parents=True)
    (bad / "columns.yaml").write_text("layer: broken\ndatabase: working\ntables:\n  - name: x.y\n    columns:\n"
                                      "      - name: a\n        type: INT\n        description: ''\n")
    from tasks.common import columns

    monkeypatch.setattr(columns, "SQL_DIR", tmp_path / "sql")
    columns._document.cache_clear()
    try:
        with pytest.raises(dictionary.DictionaryError, match=r"columns.yaml: tables.0.columns.0.description: "):
            dictionary.tables("broken")
    finally:
        columns._document.cache_clear()


def test_comment_text_is_quoted_not_spliced():
    [statement] = [s for s in dictionary.comment_statements("published") if '"recs"."champion_for_users" IS' in s]
    assert statement.startswith("COMMENT ON VIEW ")
    assert dictionary._literal("it's") == "'it''s'"


def _statements(path: Path) -> list:
    return duckdb.extract_statements(path.read_text())


@pytest.mark.parametrize("folder", LAYER_FOLDERS)
def test_each_sql_file_is_one_commented_statement(folder):
    for path in sorted((SQL / folder).glob("*.sql")):
        rel = f"{folder}/{path.name}"
        text = path.read_text()
        assert text.startswith("--"), f"{rel}: starts with a comment saying what it is for"
        kinds = [s.type.name for s in _statements(path)]
        if path.name == "schema.sql" or rel in MULTI_STATEMENT:
            continue
        if folder == "analyst":  # parameters first (SET VARIABLE), then the one query
            assert kinds[-1] == "SELECT" and set(kinds[:-1]) <= {"SET"}, f"{rel}: {kinds}"
        else:
            assert len(kinds) == 1, f"{rel}: {len(kinds)} statements"


def test_no_per_kind_copies_and_every_named_file_exists():
    names = [p.stem for p in SQL.rglob("*.sql")]
    assert not [n for n in names if re.search(r"user_topn|session_next|item_similar", n)], "per-kind SQL copies"
    assert not (SQL / "demo").exists(), "sql/demo merged into sql/analyst"
    used = set()
    for py in [*REPO.glob("tasks/**/*.py"), *REPO.glob("flows/*.py")]:
        used |= set(re.findall(r'\bsql\("([a-z_/]+)"\)', py.read_text()))
        used |= set(re.findall(r'"((?:analyst|published|recs|models|features|ops|report)/[a-z_]+)"', py.read_text()))
    missing = sorted(n for n in used if not (SQL / f"{n}.sql").is_file() and "/" in n)
    assert missing == [], f"code names SQL files that do not exist: {missing}"


def test_a_warehouse_of_the_per_kind_layout_is_migrated_once(tmp_path):
    home = Home(tmp_path / "home").ensure()
    con = warehouse.connect(home)
    con.execute("CREATE TABLE recs.user_topn (run_date DATE, model VARCHAR, model_version VARCHAR, user_id VARCHAR,"
                " rank INTEGER, item_id VARCHAR, score DOUBLE)")
    con.execute("CREATE TABLE recs.session_next (run_date DATE, model VARCHAR, model_version VARCHAR,"
                " session_id VARCHAR, rank INTEGER, item_id VARCHAR, score DOUBLE)")
    con.execute("CREATE TABLE recs.item_similar (run_date DATE, model VARCHAR, model_version VARCHAR,"
                " item_id VARCHAR, rank INTEGER, similar_item_id VARCHAR, score DOUBLE)")
    for kind in ("user_topn", "session_next", "item_similar"):
        con.execute(f"CREATE TABLE recs.candidate_{kind} AS SELECT * FROM recs.{kind}")  # noqa: S608 - fixed names
    con.execute("INSERT INTO recs.user_topn VALUES (DATE '2024-03-01', 'ease', 'e1', 'u1', 1, 'i9', 0.5)")
    con.execute("INSERT INTO recs.item_similar VALUES (DATE '2024-03-01', 'multvae', 'm1', 'i1', 1, 'i2', 0.9)")
    assert migrate_legacy_tables(con) is True
    assert con.execute("SELECT kind, model, entity_id, item_id FROM recs.recommendations ORDER BY kind").fetchall() == [
        ("item_similar", "multvae", "i1", "i2"), ("user_topn", "ease", "u1", "i9")]
    assert migrate_legacy_tables(con) is False  # the old tables are gone: nothing moves twice
    left = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'recs'").fetchall()
    assert left == [(2,)]  # recs.candidates and recs.recommendations
    con.close()
