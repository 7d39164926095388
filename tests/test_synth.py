"""The synthetic generator: exact sizes, determinism, raw format, and the planted structure is measurable."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from recmodels.data import Sessions
from tasks.tools.synth import (
    generate_interactions,
    generate_log,
    generate_sessions,
    item_catalog,
    write_yoochoose_days,
)

ISO_Z = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"


@pytest.fixture(scope="module")
def log4() -> pl.DataFrame:
    return generate_log(80_000, n_days=4, seed=7)


def test_deterministic_by_seed():
    a = generate_log(20_000, n_days=2, seed=3)
    b = generate_log(20_000, n_days=2, seed=3)
    c = generate_log(20_000, n_days=2, seed=4)
    assert a.equals(b)
    assert not a["item_id"].equals(c["item_id"])


@pytest.mark.parametrize(("n", "days"), [(0, 1), (1, 1), (7, 3), (12_345, 1), (50_001, 4)])
def test_exact_click_count(n, days):
    df = generate_log(n, n_days=days, n_items=500)
    assert df.height == n
    assert df.columns == ["session_id", "user_id", "item_id", "category", "ts"]
    s = generate_sessions(n, n_items=500, n_days=days)
    assert len(s.items) == n and s.offsets[-1] == n


def test_schema_ids_and_order(log4):
    df = log4
    assert df.schema["ts"] == pl.Datetime("ms", "UTC")
    # 9-digit, non-dense YOOCHOOSE-like item ids
    ids = df["item_id"].unique()
    assert ids.min() >= 214_000_000 and ids.max() < 215_000_000
    assert ids.max() - ids.min() > 10 * ids.len()
    assert set(df["category"].unique().to_list()) <= set(range(51)) and 0 in df["category"].to_list()
    # rows ordered by (session start, ts); session ids increase with session start, across days too
    sid = df["session_id"].to_numpy()
    ts = df["ts"].dt.epoch("ms").to_numpy()
    assert np.all(np.diff(sid) >= 0)
    same = sid[1:] == sid[:-1]
    assert np.all(np.diff(ts)[same] > 0)
    firsts = ts[np.concatenate([[True], ~same])]
    assert np.all(np.diff(firsts) >= 0)
    lengths = df.group_by("session_id").len()["len"]
    assert lengths.min() == 1 and 3.5 < lengths.mean() < 5.5


def test_sessions_never_cross_midnight_and_days_are_filled(log4):
    per = log4.group_by("session_id").agg(
        pl.col("ts").min().dt.date().alias("d0"), pl.col("ts").max().dt.date().alias("d1")
    )
    assert (per["d0"] == per["d1"]).all()
    days = log4["ts"].dt.date().value_counts().sort("ts")
    assert days["ts"].to_list() == [date(2014, 4, d) for d in range(1, 5)]
    assert days["count"].to_list() == [20_000] * 4
    # daily rhythm: the evening (18-21h UTC) is busier than the night (1-4h UTC)
    hours = log4["ts"].dt.hour().to_numpy()
    assert np.isin(hours, [18, 19, 20, 21]).sum() > 3 * np.isin(hours, [1, 2, 3, 4]).sum()


def test_logged_in_users_repeat_across_days(log4):
    sess = log4.group_by("session_id").agg(
        pl.col("user_id").first(), pl.col("ts").min().dt.date().alias("day")
    )
    logged = sess.filter(pl.col("user_id").is_not_null())
    assert 0.25 < logged.height / sess.height < 0.35
    assert log4.group_by("session_id").agg(pl.col("user_id").n_unique())["user_id"].max() == 1
    days_per_user = logged.group_by("user_id").agg(pl.col("day").n_unique())["day"]
    assert (days_per_user >= 2).mean() > 0.5
    # users have cluster preferences: their clicks concentrate on few clusters, unlike anonymous traffic
    cat = item_catalog(5000, seed=7)
    clicks = log4.join(cat.select("item_id", "cluster"), on="item_id")
    by_user = clicks.filter(pl.col("user_id").is_not_null()).group_by("user_id", "cluster").len()
    top2 = (
        by_user.sort("len", descending=True)
        .group_by("user_id")
        .agg(pl.col("len").head(2).sum().alias("top"), pl.col("len").sum().alias("all"))
    )
    heavy = top2.filter(pl.col("all") >= 30)
    assert heavy.height > 20
    assert (heavy["top"] / heavy["all"]).mean() > 0.5  # 2 of 50 clusters


def test_yoochoose_files_parse_and_match_generate_log(tmp_path):
    paths = write_yoochoose_days(tmp_path / "raw", days=3, clicks_per_day=4000, seed=5, with_user=True)
    assert [p.name for p in paths] == [f"clicks-2014-04-0{d}.dat" for d in (1, 2, 3)]
    first = paths[0].read_text().splitlines()[0].split(",")
    assert len(first) == 5 and first[0] == "1"
    cols = ["session_id", "ts", "item_id", "category", "user_id"]
    raw = pl.concat(
        [
            pl.read_csv(p, has_header=False, new_columns=cols, schema_overrides={"ts": pl.String})
            for p in paths
        ]
    )
    assert raw.height == 12_000
    assert raw["ts"].str.contains(ISO_Z).all()
    parsed = raw.with_columns(
        pl.col("ts").str.to_datetime("%Y-%m-%dT%H:%M:%S%.3fZ", time_unit="ms", time_zone="UTC")
    )
    ref = generate_log(12_000, n_days=3, seed=5).select(cols)
    assert parsed.select(cols).equals(ref)
    # session ids unique across the daily files
    per_file = [set(pl.read_csv(p, has_header=False)["column_1"].to_list()) for p in paths]
    assert not (per_file[0] & per_file[1]) and not (per_file[1] & per_file[2])
    # duckdb (the warehouse's reader) parses the timestamps natively; anonymous rows have an empty user
    con = duckdb.connect()
    n, n_null, lo = con.execute(
        "SELECT count(*), count(*) - count(c4), min(c1) FROM read_csv($path, header=false, "
        "columns={'c0':'BIGINT','c1':'TIMESTAMP','c2':'BIGINT','c3':'VARCHAR','c4':'BIGINT'})",
        {"path": str(paths[1])},
    ).fetchone()
    assert n == 4000 and 0.5 * n < n_null < 0.85 * n and str(lo).startswith("2014-04-02")
    # plain 4-column YOOCHOOSE variant
    plain = write_yoochoose_days(tmp_path / "plain", days=1, clicks_per_day=100, seed=5)
    line = plain[0].read_text().splitlines()[0].split(",")
    assert len(line) == 4 and line[2].startswith("214")


def _pairs(s: Sessions) -> tuple[np.ndarray, np.ndarray]:
    """(previous item, next item) for every click that has a predecessor in its session."""
    has_next = np.ones(len(s.items), dtype=bool)
    has_next[s.offsets[1:] - 1] = False
    i = np.flatnonzero(has_next)
    return s.items[i], s.items[i + 1]


def test_popularity_skew_and_sequential_structure():
    s = generate_sessions(200_000, n_items=5000, seed=11)
    n = s.n_items
    counts = np.sort(np.bincount(s.items, minlength=n))[::-1]
    assert counts[: n // 100].sum() / counts.sum() > 0.15  # top 1% of items (uniform: 1%)

    idx = np.arange(s.n_sessions)
    train, test = s.subset(idx < s.n_sessions // 2), s.subset(idx >= s.n_sessions // 2)
    a, b = _pairs(train)
    qa, qb = _pairs(test)
    # popularity: the 20 most clicked training items for every query
    top_pop = np.argsort(-np.bincount(train.items, minlength=n), kind="stable")[:20]
    pop_hit = np.isin(qb, top_pop).mean()
    # first-order Markov: top-20 successors of the previous item by training transition counts
    c = sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)).tocsr().tocoo()
    order = np.lexsort((c.col, -c.data, c.row))  # per row, by count desc (ties by item)
    row = c.row[order]
    rank = np.arange(len(row)) - np.searchsorted(row, row)
    keep = order[rank < 20]
    top_keys = c.row[keep].astype(np.int64) * n + c.col[keep]
    markov_hit = np.isin(qa * n + qb, top_keys).mean()
    assert pop_hit > 0.02  # popularity is a real baseline, not a strawman
    # measured 0.67 vs 0.14; without the item-level successors (p_successor=0) it is 0.35 vs 0.12,
    # so 3.5x (stricter than the 2x the models need) checks the item-level pattern, not just clusters
    assert markov_hit > 3.5 * pop_hit, (markov_hit, pop_hit)


def test_generate_sessions_matches_log_ids():
    s = generate_sessions(5_000, n_items=800, seed=2)
    df = generate_log(5_000, n_items=800, seed=2)
    cat = item_catalog(800, seed=2)
    assert np.array_equal(cat["item_id"].to_numpy()[s.items], df["item_id"].to_numpy())
    assert np.all(np.diff(cat["item_id"].to_numpy()) > 0)  # item_idx == rank of item_id
    assert np.array_equal(s.times * 1000, df["ts"].dt.epoch("ms").to_numpy().astype(np.float64))
    assert s.n_sessions == df["session_id"].n_unique()


def test_generate_interactions_structure():
    inter = generate_interactions(3000, 2000, seed=1, density=0.01, with_sequences=True)
    m = inter.matrix
    assert m.shape == (3000, 2000) and m.dtype == np.float32 and np.all(m.data == 1.0)
    assert 0.006 < m.nnz / (3000 * 2000) < 0.014
    assert np.diff(m.indptr).min() >= 1
    # the matrix is the de-duplicated sequences
    seq = inter.sequences
    assert seq is not None and seq.n_sessions == 3000
    users = np.repeat(np.arange(3000), seq.lengths)
    rebuilt = sp.csr_matrix((np.ones(len(users)), (users, seq.items)), shape=m.shape)
    assert (rebuilt.astype(bool) != m.astype(bool)).nnz == 0
    # popularity skew and per-user cluster preference (default 20 clusters here)
    pop = np.sort(np.asarray(m.sum(axis=0)).ravel())[::-1]
    assert pop[:20].sum() / pop.sum() > 0.08  # top 1% of items
    clusters = item_catalog(2000, seed=1, n_clusters=20)["cluster"].to_numpy()
    per_cluster = (m @ sp.csr_matrix((np.ones(2000), (np.arange(2000), clusters)))).toarray()
    top2 = np.sort(per_cluster, axis=1)[:, -2:].sum(axis=1) / per_cluster.sum(axis=1)
    assert top2.mean() > 0.6  # 2 of 20 clusters would hold ~0.1-0.2 without preferences
    x, y = generate_interactions(50, 100, seed=1).matrix, generate_interactions(50, 100, seed=1).matrix
    assert (x != y).nnz == 0
