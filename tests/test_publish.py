"""Publishing: candidates -> promote -> published.duckdb + lake, and analysts' read-only queries.

Every test runs on real DuckDB files in tmp_path; the concurrency test uses a real second process
holding the published file open read-only, synchronised through its stdin/stdout pipes.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from tasks.common import warehouse
from tasks.common.config import Home, UserInputError
from tasks.publish.published import PublishError, build_published, promote, write_candidates
from tasks.report.query import format_rows_json, format_rows_text, run_query

D1, D2, D3, D4, D5 = (date(2024, 3, d) for d in range(1, 6))
ANALYST_SQL = Path(__file__).resolve().parent.parent / "sql" / "analyst"
# item_idx -> item_id, with ids that only survive if bytes are passed through exactly.
ITEMS = ["apple", "bücher-7", "东京", "x y", "🙂"]


@pytest.fixture
def home(tmp_path):
    home = Home(tmp_path / "home").ensure()
    con = warehouse.connect(home)
    t = datetime(2024, 3, 1)
    con.executemany(
        "INSERT INTO features.item_vocab VALUES (?, ?, ?, ?, 1)",
        [(iid, i, t, t) for i, iid in enumerate(ITEMS)],
    )
    con.close()
    return home


def _register_run(con, model: str, version: str, run_date: date) -> None:
    con.execute(
        "INSERT INTO models.model_runs (run_id, model, version, run_date, trained_at, status) "
        "VALUES ('r', ?, ?, ?, now(), 'trained')",
        [model, version, run_date],
    )


def _night(con, run_date: date, model: str, version: str, shift: int = 0) -> None:
    """A small night of all three kinds for one model; ``shift`` makes its rows distinguishable."""
    _register_run(con, model, version, run_date)
    idx = (np.array([[0, 1, 2], [3, 4, 0]], dtype=np.int64) + shift) % len(ITEMS)
    sc = np.array([[1.0, 0.5, 0.25], [0.75, 0.625, 0.125]], dtype=np.float32)  # exact in float32
    write_candidates(con, "user_topn", run_date, model, version, np.array(["u1", "u2"]), idx, sc)
    write_candidates(con, "session_next", run_date, model, version, np.array(["s1", "s2"]), idx, sc)
    write_candidates(con, "item_similar", run_date, model, version, np.array([0, 2]), idx, sc)
    promote(con, run_date, model, version)


def test_write_candidates_maps_ids_and_ranks(home):
    con = warehouse.connect(home)
    # Padding (-1) at the end and in the middle: dropped, ranks stay dense 1..m.
    idx = np.array([[2, 0, -1], [1, -1, 4], [-1, -1, -1]], dtype=np.int64)
    sc = np.array([[3.0, 2.0, 0.0], [5.0, 0.0, 4.0], [0, 0, 0]], dtype=np.float32)
    users = np.array(["ü-1", "用户2", "nobody"])
    assert write_candidates(con, "user_topn", D1, "gru4rec", "v1", users, idx, sc) == 4
    rows = con.sql(
        "SELECT run_date, model, model_version, entity_id, rank, item_id, score "
        "FROM recs.candidates WHERE kind = 'user_topn' ORDER BY entity_id, rank"
    ).fetchall()
    assert rows == [
        (D1, "gru4rec", "v1", "ü-1", 1, "东京", 3.0),
        (D1, "gru4rec", "v1", "ü-1", 2, "apple", 2.0),
        (D1, "gru4rec", "v1", "用户2", 1, "bücher-7", 5.0),
        (D1, "gru4rec", "v1", "用户2", 2, "🙂", 4.0),
    ]
    # An entry scored -inf (an item without training support, or one the user has seen, that top-k
    # returns only because the row has fewer than k others) is never a recommendation.
    sc_inf = np.array([[3.0, -np.inf, 1.0]], dtype=np.float32)
    assert write_candidates(con, "session_next", D1, "gru4rec", "v1", np.array(["s"]), np.array([[2, 0, 1]]),
                            sc_inf) == 2
    assert con.sql("SELECT rank, item_id FROM recs.candidates WHERE kind = 'session_next' ORDER BY 1").fetchall() == [
        (1, "东京"), (2, ITEMS[1])]
    # item_similar: the source item is an index too, mapped through the same vocabulary.
    write_candidates(con, "item_similar", D1, "i2v", "v1", np.array([4, 3]), idx[:2], sc[:2])
    sim = con.sql(
        "SELECT entity_id, rank, item_id FROM recs.candidates WHERE kind = 'item_similar' ORDER BY 1, 2"
    ).fetchall()
    assert sim == [("x y", 1, "bücher-7"), ("x y", 2, "🙂"), ("🙂", 1, "东京"), ("🙂", 2, "apple")]
    con.close()


def test_write_candidates_replaces_idempotently(home):
    con = warehouse.connect(home)
    users = np.array(["u1", "u2"])
    idx = np.array([[0, 1], [2, 3]])
    sc = np.ones((2, 2), dtype=np.float32)
    write_candidates(con, "session_next", D1, "narm", "v1", users, idx, sc)
    write_candidates(con, "session_next", D1, "gru4rec", "v1", users, idx, sc)  # other model
    write_candidates(con, "session_next", D2, "narm", "v2", users, idx, sc)  # other night
    for _ in range(2):  # re-run of D1 narm with new output: replaces, never appends
        write_candidates(con, "session_next", D1, "narm", "v1b", users[:1], idx[:1, :1], sc[:1, :1])
    counts = con.sql(
        "SELECT run_date, model, model_version, count(*) FROM recs.candidates WHERE kind = 'session_next' "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert counts == [(D1, "gru4rec", "v1", 4), (D1, "narm", "v1b", 1), (D2, "narm", "v2", 4)]
    con.close()


def test_write_candidates_rejects_bad_input_and_writes_nothing(home):
    con = warehouse.connect(home)
    users = np.array(["u1", "u2"])
    sc = np.ones((2, 2), dtype=np.float32)
    write_candidates(con, "user_topn", D1, "m", "v1", users, np.array([[0, 1], [2, 3]]), sc)
    with pytest.raises(PublishError, match="missing from features.item_vocab"):
        write_candidates(con, "user_topn", D1, "m", "v2", users, np.array([[0, 99], [2, 3]]), sc)
    with pytest.raises(PublishError, match="duplicate"):
        write_candidates(
            con, "user_topn", D1, "m", "v2", np.array(["u1", "u1"]), np.array([[0, 1], [2, 3]]), sc
        )
    with pytest.raises(PublishError, match="shape"):
        write_candidates(con, "user_topn", D1, "m", "v2", users, np.array([[0, 1]]), sc)
    # The failed calls rolled back: the first version's rows are still there, untouched.
    assert con.sql("SELECT model_version, count(*) FROM recs.candidates GROUP BY 1").fetchall() == [
        ("v1", 4)
    ]
    con.close()


def test_promote_replaces_exactly_one_night_of_one_model(home):
    con = warehouse.connect(home)
    _night(con, D1, "A", "a1")
    _night(con, D1, "B", "b1", shift=1)
    _night(con, D2, "A", "a2", shift=2)
    before = con.sql(
        "SELECT * FROM recs.recommendations WHERE NOT (run_date = ? AND model = 'A') ORDER BY ALL", params=[D1]
    ).fetchall()
    # A re-trained version of A for D1 (e.g. a backfill), with fewer rows: replaces exactly A@D1.
    _register_run(con, "A", "a1b", D1)
    write_candidates(
        con, "user_topn", D1, "A", "a1b", np.array(["u9"]), np.array([[4]]), np.ones((1, 1), "float32")
    )
    assert promote(con, D1, "A", "a1b") == {"user_topn": 1, "session_next": 0, "item_similar": 0}
    # Every kind of A@D1 was replaced: session_next and item_similar are now empty for it.
    assert con.sql(
        "SELECT kind, entity_id, item_id, model_version FROM recs.recommendations WHERE run_date = ? AND model = 'A'",
        params=[D1],
    ).fetchall() == [("user_topn", "u9", "🙂", "a1b")]
    after = con.sql(
        "SELECT * FROM recs.recommendations WHERE NOT (run_date = ? AND model = 'A') ORDER BY ALL", params=[D1]
    ).fetchall()
    assert after == before and len(after) == 36  # B@D1 and A@D2, 6 rows of each of 3 kinds
    status = dict(con.sql("SELECT version, status FROM models.model_runs").fetchall())
    assert status == {"a1": "published", "b1": "published", "a2": "published", "a1b": "published"}
    con.close()


def test_promote_without_candidates_changes_nothing(home):
    con = warehouse.connect(home)
    _night(con, D1, "A", "a1")
    _register_run(con, "A", "ghost", D1)
    with pytest.raises(PublishError, match="no candidates"):
        promote(con, D1, "A", "ghost")  # would have erased A@D1
    with pytest.raises(PublishError, match="not in models.model_runs"):
        write_candidates(
            con,
            "user_topn",
            D2,
            "A",
            "unregistered",
            np.array(["u"]),
            np.array([[0]]),
            np.ones((1, 1), "float32"),
        )
        promote(con, D2, "A", "unregistered")
    assert con.sql("SELECT count(*) FROM recs.recommendations WHERE model_version = 'a1'").fetchall() == [(18,)]
    assert con.sql("SELECT count(*) FROM recs.recommendations WHERE run_date = ?", params=[D2]).fetchall() == [(0,)]
    assert con.sql("SELECT status FROM models.model_runs WHERE version = 'ghost'").fetchall() == [
        ("trained",)
    ]
    con.close()


def test_promote_prunes_old_candidates(home):
    con = warehouse.connect(home)
    for d in (D1, D2, D3, D4, D5):
        _night(con, d, "A", f"a{d.day}")
    nights = con.sql("SELECT kind, list(DISTINCT run_date ORDER BY run_date) FROM recs.candidates GROUP BY 1").fetchall()
    # candidates: the last 3 nights of each kind; published rows: all nights
    assert sorted(nights) == [(kind, [D3, D4, D5]) for kind in ("item_similar", "session_next", "user_topn")]
    assert con.sql("SELECT count(DISTINCT run_date) FROM recs.recommendations").fetchall() == [(5,)]
    con.close()


def test_published_db_latest_views_and_summaries(home):
    con = warehouse.connect(home)
    _night(con, D1, "A", "a1")
    _night(con, D1, "B", "b1", shift=1)
    _night(con, D2, "A", "a2", shift=2)  # B rejected on D2: the flow never promoted it
    con.execute(
        "INSERT INTO raw.clicks (session_id, user_id, item_id, event_type, category, ts, event_date, source_file, source_row, run_id, ingested_at) VALUES ('s1', 'u1', 'apple', 'click', NULL, ?, ?, 'f.csv', 2, 'r', now()),"
        " ('s2', NULL, '东京', 'click', NULL, ?, ?, 'f.csv', 3, 'r', now())",
        [datetime(2024, 3, 1, 10), D1, datetime(2024, 3, 1, 11), D1],
    )
    con.execute(
        "INSERT INTO quarantine.clicks (source_file, source_row, reason, raw_ts, run_id, quarantined_at) "
        "VALUES ('f.csv', 4, 'bad_ts: not a time', 'yesterday', 'r', TIMESTAMP '2024-03-02 01:00')"
    )
    con.execute(
        "INSERT INTO models.eval_metrics VALUES ('r', 'A', 'a2', ?, 'P4-user', 'NDCG', 20, 0.25),"
        " ('r', 'A', 'a2', ?, 'P4-user', 'n_predictions', NULL, 40),"
        # The user_topn champion is judged on P4-user HR@10: B's older night beats A's newer one.
        " ('r', 'A', 'a2', ?, 'P4-user', 'HR', 10, 0.25), ('r', 'B', 'b1', ?, 'P4-user', 'HR', 10, 0.5)",
        [D2, D2, D2, D1],
    )
    con.execute(
        "INSERT INTO ops.validation_results (run_id, batch, expectation, level, success, unexpected_count,"
        " validated_at) VALUES ('r', 'f.csv', 'expect_not_null', 'row', false, 3, TIMESTAMP '2024-03-02 02:00')"
    )
    con.close()
    path = build_published(home)
    assert path == home.published_db and not list(home.tmp.glob("published-*"))
    columns, rows = run_query(
        home,
        "SELECT kind, model, run_date, model_version, count(*) FROM recs.latest GROUP BY ALL ORDER BY ALL",
    )
    assert columns[:4] == ["kind", "model", "run_date", "model_version"]
    assert rows == [(kind, m, d, v, 6) for kind in ("item_similar", "session_next", "user_topn")
                    for m, d, v in (("A", D2, "a2"), ("B", D1, "b1"))]
    _, contents = run_query(home, "SELECT * FROM recs.nights WHERE kind = 'user_topn' ORDER BY ALL")
    assert contents == [
        ("user_topn", D1, "A", "a1", 6),
        ("user_topn", D1, "B", "b1", 6),
        ("user_topn", D2, "A", "a2", 6),
    ]
    _, champions = run_query(home, "SELECT kind, model, model_version, run_date, value FROM recs.champions")
    # user_topn: B on its figure; the others have no figure, so the newest night (A's) wins.
    assert champions == [("item_similar", "A", "a2", D2, None), ("session_next", "A", "a2", D2, None),
                         ("user_topn", "B", "b1", D1, 0.5)]
    _, users = run_query(home, "SELECT user_id, rank, item_id, model FROM recs.champion_for_users ORDER BY ALL")
    assert users == [("u1", 1, "bücher-7", "B"), ("u1", 2, "东京", "B"), ("u1", 3, "x y", "B"),
                     ("u2", 1, "🙂", "B"), ("u2", 2, "apple", "B"), ("u2", 3, "bücher-7", "B")]
    _, sessions = run_query(home, "SELECT DISTINCT model, run_date FROM recs.champion_for_sessions")
    assert sessions == [("A", D2)]
    _, similar = run_query(home, "SELECT item_id, rank, similar_item_id FROM recs.champion_similar_items "
                                 "WHERE item_id = 'apple' ORDER BY rank")
    assert similar == [("apple", 1, "东京"), ("apple", 2, "x y"), ("apple", 3, "🙂")]  # A's D2 rows, shift 2
    assert run_query(home, "SELECT * FROM ops.daily_volume")[1] == [(D1, 2, 2, 1, 2)]
    assert run_query(home, "SELECT day, check_name, rows FROM ops.quarantine_summary")[1] == [
        (date(2024, 3, 2), "bad_ts", 1)
    ]
    assert run_query(home, "SELECT count(*) FROM models.model_runs WHERE status = 'published'")[1] == [(3,)]
    assert run_query(home, "SELECT failed, unexpected_rows FROM ops.validation_summary")[1] == [(1, 3)]
    # The documented analyst examples run as shipped against a real published file.
    answers = {f.stem: run_query(home, f.read_text()) for f in ANALYST_SQL.glob("*.sql")}
    assert set(answers) == {
        "user_recommendations",
        "session_recommendations",
        "similar_items",
        "champions",
        "model_leaderboard",
        "data_quality_trend",
    }
    assert [r[0] for r in answers["user_recommendations"][1]] == ["A"] * 3 + ["B"] * 3
    assert {r[3] for r in answers["user_recommendations"][1]} == {"u1"}  # a tie on rows: the smallest id
    assert answers["similar_items"][1] and answers["session_recommendations"][1]
    assert [r[:2] for r in answers["champions"][1]] == [("item_similar", "A"), ("session_next", "A"), ("user_topn", "B")]
    board = answers["model_leaderboard"]
    at_20 = [dict(zip(board[0], row, strict=True)) for row in board[1] if row[board[0].index("k")] == 20]
    expected = {"model": "A", "status": "published", "ndcg": 0.25, "n_predictions": 40, "ndcg_rank": 1}
    assert [{c: r[c] for c in expected} for r in at_20] == [expected]  # the newest night (D2) only
    trend = {
        row[0]: dict(zip(answers["data_quality_trend"][0], row, strict=True))
        for row in answers["data_quality_trend"][1]
    }
    assert trend[D1]["accepted_rows"] == 2 and trend[date(2024, 3, 2)]["quarantined_rows"] == 1
    assert trend[date(2024, 3, 2)]["expectations_failed"] == 1


READER = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    q = "SELECT max(run_date)::VARCHAR FROM recs.recommendations"
    print("ready", con.execute(q).fetchall()[0][0], flush=True)
    sys.stdin.readline()  # the test has rebuilt the published file meanwhile
    print("after", con.execute(q).fetchall()[0][0], flush=True)
    con.close()
    """
)


def test_build_published_while_an_analyst_holds_it_open(home):
    con = warehouse.connect(home)
    _night(con, D1, "A", "a1")
    con.close()
    build_published(home)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(home.published_db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().split() == ["ready", D1.isoformat()]
        # The reader's read-only open of published.duckdb would block any writer of that file.
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(home.published_db)).close()
        con = warehouse.connect(home)
        _night(con, D2, "A", "a2")
        con.close()
        build_published(home)  # succeeds: it never opens the file the reader holds
        assert run_query(home, "SELECT max(run_date) FROM recs.recommendations")[1] == [(D2,)]  # new connection
        out, err = reader.communicate("go\n", timeout=60)
        assert out.split() == ["after", D1.isoformat()], err  # the old connection keeps the old night
        assert reader.returncode == 0, err
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()


def _lake_counts(home) -> dict[tuple[str, str], int]:
    return {
        (part.parent.name, part.name): pq.read_metadata(part / "data.parquet").num_rows
        for part in (home.lake / "recs").glob("*/run_date=*")
    }


def test_retention_and_parquet_lake(home):
    con = warehouse.connect(home)
    for d in (D1, D2, D3, D4, D5):
        _night(con, d, "A", f"a{d.day}")
    _night(con, D5, "B", "b5", shift=3)
    con.close()
    build_published(home, retention_days=30)
    assert len(_lake_counts(home)) == 15
    build_published(home, retention_days=2)
    _, nights = run_query(home, "SELECT DISTINCT run_date FROM recs.recommendations ORDER BY 1")
    assert nights == [(D4,), (D5,)]
    _, counts = run_query(
        home,
        "SELECT kind, run_date, count(*) FROM recs.recommendations GROUP BY ALL",
    )
    expected = {(kind, f"run_date={d.isoformat()}"): n for kind, d, n in counts}
    assert _lake_counts(home) == expected  # D1..D3 partitions removed, the rest match row for row
    assert expected[("user_topn", f"run_date={D5.isoformat()}")] == 12  # A and B
    # A Hive reader gets run_date back from the path, and the same rows as the published table.
    lake = duckdb.sql(
        "SELECT run_date, model, entity_id, rank, item_id FROM read_parquet($g, hive_partitioning = true) ORDER BY ALL",
        params={"g": str(home.lake / "recs" / "user_topn" / "*" / "data.parquet")},
    ).fetchall()
    assert (
        lake
        == run_query(home, "SELECT run_date, model, entity_id, rank, item_id FROM recs.recommendations "
                           "WHERE kind = 'user_topn' ORDER BY ALL")[
            1
        ]
    )
    assert not list((home.lake / "recs").glob("*/*/.*.tmp"))


def _inodes(home) -> dict[str, int]:
    return {
        str(p.relative_to(home.lake)): p.stat().st_ino for p in (home.lake / "recs").glob("*/*/data.parquet")
    }


def test_lake_rewrites_only_changed_partitions(home):
    con = warehouse.connect(home)
    for d in (D1, D2, D3):
        _night(con, d, "A", f"a{d.day}")
    con.close()
    build_published(home)
    first = _inodes(home)
    build_published(home)
    assert _inodes(home) == first  # nothing changed: no partition rewritten
    con = warehouse.connect(home)
    _register_run(con, "A", "a2b", D2)  # a backfill re-publishes D2's user_topn only
    write_candidates(
        con, "user_topn", D2, "A", "a2b", np.array(["u7"]), np.array([[1]]), np.ones((1, 1), "float32")
    )
    promote(con, D2, "A", "a2b")
    con.close()
    build_published(home)
    changed = {name for name, ino in _inodes(home).items() if first.get(name) != ino}
    # promote replaced all three kinds of A@D2 (the other two now empty: their partitions are gone).
    assert changed == {f"recs/user_topn/run_date={D2.isoformat()}/data.parquet"}
    assert len(_inodes(home)) == 7
    assert pq.read_table(home.lake / "recs" / "user_topn" / f"run_date={D2.isoformat()}").num_rows == 1


def test_run_query_is_read_only_and_explains_errors(home):
    with pytest.raises(UserInputError, match="no published database yet at .*run a night first"):
        run_query(home, "SELECT 1")
    con = warehouse.connect(home)
    _night(con, D1, "A", "a1")
    con.close()
    build_published(home)
    for statement in (
        "DROP TABLE recs.recommendations",
        "DELETE FROM recs.recommendations",
        "CREATE TABLE t AS SELECT 1",
    ):
        with pytest.raises(UserInputError, match="read-only"):
            run_query(home, statement)
    with pytest.raises(UserInputError, match="query failed"):
        run_query(home, f"COPY recs.recommendations TO '{home.root / 'x.csv'}'")
    assert not (home.root / "x.csv").exists()
    with pytest.raises(UserInputError, match="query failed:.*nope"):
        run_query(home, "SELECT * FROM nope")
    assert run_query(home, "SELECT count(*) FROM recs.recommendations")[1] == [(18,)]  # still all there
    columns, rows = run_query(
        home, "SELECT run_date, item_id, score FROM recs.recommendations ORDER BY item_id, score DESC", limit=2
    )
    assert len(rows) == 2
    assert (
        format_rows_json(columns, rows[:1])
        == '[{"run_date": "2024-03-01", "item_id": "apple", "score": 1.0}]'
    )
    assert format_rows_json(["x"], [(float("nan"),)]) == '[{"x": null}]'
    assert format_rows_text(columns, rows).splitlines()[0].split() == columns
