"""The analyst's surface through the real console entry point (a subprocess per command) on a small real
night (tests/test_sql_layers.published_night): ``clickrec tables``, every sql/analyst file through
``clickrec query --file`` with its default and chosen parameters, and what query output guarantees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from test_sql_layers import published_night

from tasks.common.config import Home
from tasks.publish import dictionary
from tasks.report.query import format_rows_json, format_rows_text, printable

REPO = Path(__file__).resolve().parent.parent
ANALYST = sorted((REPO / "sql" / "analyst").glob("*.sql"))


def clickrec(*args: str, home: Home) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", DO_NOT_TRACK="1", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "flows.cli", *args, "--home", str(home.root)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def rows(*args: str, home: Home) -> list[dict]:
    done = clickrec("query", *args, "--json", home=home)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def night(tmp_path_factory) -> Home:
    return published_night(tmp_path_factory.mktemp("analyst") / "home")


def test_tables_lists_every_published_table_with_its_columns(night):
    done = clickrec("tables", "--json", home=night)
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert listing["source"] == str(night.published_db)
    live = {t["table"]: t for t in listing["tables"]}
    documented = {t.name: t for t in dictionary.tables("published")}
    assert set(live) == set(documented)
    for name, t in documented.items():
        assert [c["name"] for c in live[name]["columns"]] == [c.name for c in t.columns]
        assert all(c["description"] and c["type"] for c in live[name]["columns"]), name
    text = clickrec("tables", home=night)
    assert text.returncode == 0, text.stderr
    assert "recs.champion_for_users (view)" in text.stdout
    entity = next(c for c in documented["recs.recommendations"].columns if c.name == "entity_id")
    assert " ".join(entity.description.split()) in text.stdout


def test_tables_before_the_first_night_prints_the_dictionary(tmp_path):
    done = clickrec("tables", home=Home(tmp_path / "empty"))
    assert done.returncode == 0, done.stderr
    assert "no published database yet" in done.stdout.splitlines()[0]
    assert "recs.recommendations (table)" in done.stdout


@pytest.mark.parametrize("path", ANALYST, ids=[p.stem for p in ANALYST])
def test_every_analyst_file_returns_rows_with_its_defaults(night, path):
    assert rows("--file", str(path), home=night), f"{path.name} returned no rows on the fixture night"


def test_analyst_parameters_choose_what_comes_back(night):
    users = str(REPO / "sql" / "analyst" / "user_recommendations.sql")
    default = rows("--file", users, home=night)
    assert {r["user_id"] for r in default} == {"u0"}  # both users have as many rows: the smallest id
    u1 = rows("--file", users, "--var", "user_id=u1", "--var", "top_n=2", home=night)
    assert {r["user_id"] for r in u1} == {"u1"}
    assert sorted((r["model"], r["rank"]) for r in u1) == [(m, k) for m in ("ease", "multvae", "neumf") for k in (1, 2)]
    assert rows("--file", users, "--var", "user_id=nobody", home=night) == []
    similar = str(REPO / "sql" / "analyst" / "similar_items.sql")
    chosen = rows("--file", similar, "--var", "item_id=item-2", home=night)
    assert {r["item_id"] for r in chosen} == {"item-2"} and len(chosen) == 4
    board = rows("--file", str(REPO / "sql" / "analyst" / "model_leaderboard.sql"), home=night)
    assert {r["model"] for r in board} == {"ease", "neumf", "gru4rec", "multvae"}
    champions = {r["kind"]: r for r in rows("--file", str(REPO / "sql" / "analyst" / "champions.sql"), home=night)}
    # user_topn: ease (P4-user HR@10 0.40) beats neumf (0.30); multvae is judged on P4-user too.
    assert {k: r["model"] for k, r in champions.items()} == {"user_topn": "ease", "session_next": "gru4rec",
                                                             "item_similar": "multvae"}
    assert champions["user_topn"]["figure"] == "P4-user HR@10" and champions["user_topn"]["value"] == 0.4


def test_analyst_connection_reads_no_other_file(night, tmp_path):
    outside = tmp_path / "x.csv"
    outside.write_text("a\n1\n")
    attempts = (f"SELECT * FROM read_csv('{outside}')", f"ATTACH '{tmp_path / 'other.duckdb'}' AS o")  # noqa: S608
    for sql in attempts:
        done = clickrec("query", sql, home=night)
        assert done.returncode != 0 and done.stderr.startswith("error: query failed"), (sql, done.stderr)
    assert not (tmp_path / "other.duckdb").exists()


def test_query_json_covers_every_duckdb_value(night):
    [row] = rows("SELECT INTERVAL 36 HOUR AS i, '00000000-0000-0000-0000-000000000001'::UUID AS u, [1.5, 'nan'::DOUBLE] AS l,"
                 " {'a': 'inf'::DOUBLE} AS s, 12::HUGEINT AS h, '\\x01'::BLOB AS b", home=night)
    assert row == {"i": "1 day, 12:00:00", "u": "00000000-0000-0000-0000-000000000001", "l": [1.5, None],
                   "s": {"a": None}, "h": 12, "b": "01"}


def test_plain_text_rows_are_literal_aligned_and_null_is_null():
    text = format_rows_text(["name", "n"], [("item[bold]1[/bold]", 7), (None, 1234), ("a\x1b[31mb\x07c", None)])
    header, rule, *lines = text.splitlines()
    assert header.split() == ["name", "n"]
    assert lines[0].startswith("item[bold]1[/bold]") and lines[0].endswith("   7")  # numbers right-aligned
    assert lines[1].startswith("NULL") and lines[1].endswith("1234")
    assert "\x1b" not in text and "\x07" not in text and lines[2].startswith("abc") and lines[2].endswith("NULL")
    assert printable("tab\there\nnext") == "tab here next"
    assert format_rows_json(["d", "t", "u"], [(Decimal("1.10"), timedelta(seconds=90), UUID(int=2))]) == (
        '[{"d": "1.10", "t": "0:01:30", "u": "00000000-0000-0000-0000-000000000002"}]')
