"""Features stage on hand-made click logs in real DuckDB files (tmp_path)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import numpy as np
import pytest

from tasks.common.sqlfiles import sql
from tasks.features.build import (
    FeatureConfig,
    build_features,
    load_interaction_matrix,
    load_session_split,
    load_sessions,
    load_user_split,
    temporal_split,
    vocab_sizes,
)

D1 = date(2024, 3, 1)
T0 = datetime(2024, 3, 1, 10, 0)

# no filtering: tests of sessionising / ordering see every event
KEEP_ALL = FeatureConfig(min_item_support=1, min_session_length=1)


def _insert(con: duckdb.DuckDBPyConnection, rows: list[tuple], weights: list[float] | None = None) -> None:
    """rows: (session_id, user_id, item_id, ts[, source_file, source_row]); lineage defaults to list order.
    weights: raw.clicks.weight per row (the profile's event-type weight), default 1.0."""
    full = []
    for n, r in enumerate(rows, start=1):
        sid, uid, item, ts = r[:4]
        src_file, src_row = r[4:6] if len(r) > 4 else ("f.csv", n)
        full.append((sid, uid, item, ts, ts.date(), src_file, src_row, weights[n - 1] if weights else 1.0))
    con.executemany(
        "INSERT INTO raw.clicks (session_id, user_id, item_id, event_type, category, ts, event_date, source_file,"
        " source_row, run_id, ingested_at, weight)"
        " VALUES ($1, $2, $3, 'click', NULL, $4, $5, $6, $7, 'run', now(), $8)",
        full,
    )


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect(str(tmp_path / "clickrec.duckdb"))
    c.execute(sql("warehouse/schema"))
    yield c
    c.close()


def _session_items(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    rows = con.sql(
        """SELECT e.session_id, list(v.item_id ORDER BY e.position)
           FROM features.session_events e JOIN features.item_vocab v USING (item_idx)
           GROUP BY e.session_id"""
    ).fetchall()
    return dict(rows)


def _vocab(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return dict(con.sql("SELECT item_id, item_idx FROM features.item_vocab").fetchall())


def test_gap_splits_user_sessions_at_more_than_gap(con):
    m = timedelta(minutes=1)
    _insert(
        con,
        [
            ("src1", "u1", "a", T0),
            ("src1", "u1", "b", T0 + 29 * m),  # 29 min: same session
            ("src2", "u1", "c", T0 + 60 * m),  # 31 min after b: new session
            ("src2", "u1", "d", T0 + 90 * m),  # exactly 30 min: same session (gap must be exceeded)
            ("src3", None, "e", T0),  # no user: cannot be assigned when deriving
        ],
    )
    build_features(
        con, D1, D1, FeatureConfig(min_item_support=1, min_session_length=1, derive_sessions_from_user=True)
    )
    assert _session_items(con) == {
        "u1:2024-03-01T10:00:00.000000": ["a", "b"],
        "u1:2024-03-01T11:00:00.000000": ["c", "d"],
    }
    users = con.sql("SELECT DISTINCT user_id FROM features.sessions").fetchall()
    assert users == [("u1",)]

    # a gap of 29.5 min cuts before c (31) and d (30) but keeps a-b (29)
    build_features(
        con,
        D1,
        D1,
        FeatureConfig(
            min_item_support=1, min_session_length=1, derive_sessions_from_user=True, gap_minutes=29.5
        ),
    )
    assert sorted(map(len, _session_items(con).values())) == [1, 1, 2]

    # without deriving, the source's ids are the sessions (the anonymous one included)
    build_features(con, D1, D1, KEEP_ALL)
    assert _session_items(con) == {"src1": ["a", "b"], "src2": ["c", "d"], "src3": ["e"]}


def test_collapses_consecutive_repeats_only(con):
    _insert(con, [("s", "u", item, T0 + timedelta(seconds=i)) for i, item in enumerate("aabbba")])
    build_features(con, D1, D1, KEEP_ALL)
    assert _session_items(con) == {"s": ["a", "b", "a"]}
    positions = con.sql("SELECT list(position ORDER BY ts) FROM features.session_events").fetchall()
    assert positions == [([0, 1, 2],)]
    assert con.sql("SELECT length FROM features.sessions").fetchall() == [(3,)]

    build_features(
        con, D1, D1, FeatureConfig(min_item_support=1, min_session_length=1, collapse_repeats=False)
    )
    assert _session_items(con) == {"s": list("aabbba")}


def test_filters_iterate_to_fixed_point(con):
    # support >= 2, length >= 2. Pass 1: x is rare -> s1 = [y] is short -> y drops to 1 event.
    # Pass 2: y rare -> s2 = [z] short -> z drops to 1. Pass 3: z rare -> s3 = [a] short.
    # Pass 4 removes nothing. One pass alone would keep s2 and s3.
    sessions = {"s1": "xy", "s2": "yz", "s3": "za", "s4": "ab", "s5": "ab"}
    rows = []
    for k, (sid, items) in enumerate(sessions.items()):
        rows += [(sid, None, item, T0 + timedelta(hours=k, minutes=i)) for i, item in enumerate(items)]
    _insert(con, rows)
    summary = build_features(con, D1, D1, FeatureConfig(min_item_support=2, min_session_length=2))
    assert _session_items(con) == {"s4": ["a", "b"], "s5": ["a", "b"]}
    assert summary.filter_rounds == 4
    assert (summary.n_raw_events, summary.n_events, summary.n_sessions) == (10, 4, 2)
    # filtered-out items get no index; session_events only reference vocabulary items
    assert sorted(_vocab(con)) == ["a", "b"]
    assert con.sql("SELECT n_events FROM features.item_vocab ORDER BY item_id").fetchall() == [(2,), (2,)]


def test_default_filters_drop_items_below_five(con):
    rows = [
        (f"s{k}", None, item, T0 + timedelta(minutes=k, seconds=i))
        for k in range(5)
        for i, item in enumerate("ab")
    ]
    rows += [
        ("s9", None, "a", T0 + timedelta(hours=1)),
        ("s9", None, "c", T0 + timedelta(hours=1, seconds=1)),
    ]
    _insert(con, rows)
    build_features(con, D1, D1)  # c has 1 event -> dropped, s9 = [a] -> too short -> dropped
    assert set(_session_items(con)) == {f"s{k}" for k in range(5)}


def test_item_indices_are_stable_across_nights(con):
    d2, d3 = D1 + timedelta(days=1), D1 + timedelta(days=2)
    day1 = [("s1", "u1", "m", T0), ("s1", "u1", "k", T0 + timedelta(minutes=1))]
    _insert(con, day1)
    build_features(con, D1, D1, KEEP_ALL)
    night1 = _vocab(con)
    assert night1 == {"m": 0, "k": 1}  # first_seen order, not id order

    t2 = datetime(2024, 3, 2, 9, 0)
    # night 2: new items z and b with the same first_seen (tie broken by id), k reappears
    _insert(con, [("s2", "u2", "z", t2), ("s2", "u2", "b", t2), ("s2", "u2", "k", t2 + timedelta(minutes=5))])
    build_features(con, D1, d2, KEEP_ALL)
    night2 = _vocab(con)
    assert {k: night2[k] for k in night1} == night1
    assert night2 == {"m": 0, "k": 1, "b": 2, "z": 3}
    k_row = con.sql(
        "SELECT first_seen, last_seen, n_events FROM features.item_vocab WHERE item_id = 'k'"
    ).fetchall()
    assert k_row == [(T0 + timedelta(minutes=1), t2 + timedelta(minutes=5), 2)]

    # a rebuild of the same night changes nothing; a window that no longer holds day 1 keeps m's index
    build_features(con, D1, d2, KEEP_ALL)
    assert _vocab(con) == night2
    _insert(
        con, [("s3", "u1", "new", datetime(2024, 3, 3, 8, 0)), ("s3", "u1", "b", datetime(2024, 3, 3, 8, 1))]
    )
    build_features(con, d2, d3, KEEP_ALL)
    assert _vocab(con) == {**night2, "new": 4}
    m_row = con.sql("SELECT first_seen, n_events FROM features.item_vocab WHERE item_id = 'm'").fetchall()
    assert m_row == [(T0, 1)]  # untouched by builds that did not contain it
    # users are stable the same way
    assert dict(con.sql("SELECT user_id, user_idx FROM features.user_vocab").fetchall()) == {"u1": 0, "u2": 1}


def test_rare_item_gets_an_index_once_it_survives(con):
    cfg = FeatureConfig(min_item_support=2, min_session_length=1)
    _insert(con, [("s1", None, "a", T0), ("s1", None, "r", T0 + timedelta(minutes=1)), ("s2", None, "a", T0)])
    build_features(con, D1, D1, cfg)
    assert _vocab(con) == {"a": 0}
    _insert(con, [("s3", None, "r", datetime(2024, 3, 2, 9, 0))])
    build_features(con, D1, D1 + timedelta(days=1), cfg)
    assert _vocab(con) == {"a": 0, "r": 1}


def test_ties_in_ts_are_ordered_by_source_file_then_row(con):
    _insert(
        con,
        [
            ("s", "u", "c", T0, "b.csv", 1),
            ("s", "u", "b", T0, "a.csv", 7),
            ("s", "u", "a", T0, "a.csv", 3),
            ("s", "u", "d", T0 - timedelta(seconds=1), "z.csv", 99),
        ],
    )
    build_features(con, D1, D1, KEEP_ALL)
    assert _session_items(con) == {"s": ["d", "a", "b", "c"]}
    sessions = load_sessions(con, D1, D1)
    vocab = _vocab(con)
    assert sessions.items.tolist() == [vocab[i] for i in "dabc"]


def test_load_sessions_offsets_items_ids_times(con):
    m = timedelta(minutes=1)
    _insert(
        con,
        [
            ("late", "u1", "x", T0 + 50 * m),
            ("early", "u2", "y", T0),
            ("late", "u1", "y", T0 + 51 * m),
            ("early", "u2", "x", T0 + 1 * m),
            ("early", "u2", "z", T0 + 2 * m),
        ],
    )
    build_features(con, D1, D1, KEEP_ALL)
    v = _vocab(con)
    s = load_sessions(con, D1, D1)
    assert s.offsets.tolist() == [0, 3, 5]  # ordered by session start
    assert s.session_ids.tolist() == ["early", "late"]
    assert s.items.tolist() == [v["y"], v["x"], v["z"], v["x"], v["y"]]
    assert s.items.dtype == np.int64 and s.n_items == 3
    assert s.times[0] == (T0 - datetime(1970, 1, 1)).total_seconds()  # ts is naive UTC
    assert np.all(np.diff(s.times[:3]) == 60.0)
    # min_length keeps only sessions long enough, offsets rebuilt
    s3 = load_sessions(con, D1, D1, min_length=3)
    assert s3.offsets.tolist() == [0, 3] and s3.session_ids.tolist() == ["early"]
    empty = load_sessions(con, D1 + timedelta(days=5), D1 + timedelta(days=5))
    assert empty.n_sessions == 0 and empty.offsets.tolist() == [0]


def test_interaction_matrix_matches_hand_count(con):
    h = timedelta(hours=1)
    _insert(
        con,
        [
            ("s1", "u1", "a", T0),
            ("s1", "u1", "b", T0 + h),
            ("s1", "u1", "a", T0 + 2 * h),  # not consecutive: counted again
            ("s2", "u2", "b", T0),
            ("s3", None, "a", T0),  # anonymous: no row in the user matrix
            ("s4", "u1", "a", datetime(2024, 3, 2, 10, 0)),  # next day
        ],
    )
    build_features(con, D1, D1 + timedelta(days=1), KEEP_ALL)
    v = _vocab(con)
    users = dict(con.sql("SELECT user_id, user_idx FROM features.user_vocab").fetchall())
    expected_count = np.zeros((2, 2), dtype=np.float32)
    expected_count[users["u1"], v["a"]] = 3
    expected_count[users["u1"], v["b"]] = 1
    expected_count[users["u2"], v["b"]] = 1

    count = load_interaction_matrix(con, D1, D1 + timedelta(days=1), weighting="count")
    assert count.dtype == np.float32 and count.has_sorted_indices
    np.testing.assert_array_equal(count.toarray(), expected_count)
    binary = load_interaction_matrix(con, D1, D1 + timedelta(days=1))
    np.testing.assert_array_equal(binary.toarray(), (expected_count > 0).astype(np.float32))
    # day 1 only: u1's next-day click is out of the window
    day1 = load_interaction_matrix(con, D1, D1, weighting="count")
    assert day1[users["u1"], v["a"]] == 2

    ref = datetime(2024, 3, 3, 10, 0)
    decay = load_interaction_matrix(
        con, D1, D1 + timedelta(days=1), weighting="decay", half_life_days=1.0, ref_ts=ref
    )
    ages = np.array([2.0, 2.0 - 2 / 24, 1.0])  # u1's three clicks on a, in days before ref
    assert decay[users["u1"], v["a"]] == pytest.approx(np.sum(0.5**ages), rel=1e-6)
    assert decay[users["u2"], v["b"]] == pytest.approx(0.25, rel=1e-6)

    stored = con.sql("SELECT user_idx, item_idx, n_events FROM features.interactions ORDER BY ALL").fetchall()
    nz = np.argwhere(expected_count)
    assert stored == [(int(r), int(c), int(expected_count[r, c])) for r, c in nz]


def test_entity_session_gives_sessions_stable_rows(con):
    _insert(con, [("s1", None, "a", T0), ("s1", None, "b", T0 + timedelta(minutes=1)), ("s2", None, "b", T0)])
    build_features(con, D1, D1, FeatureConfig(min_item_support=1, min_session_length=1, entity="session"))
    sv = dict(con.sql("SELECT session_id, session_idx FROM features.session_vocab").fetchall())
    assert sv == {"s1": 0, "s2": 1}  # first_seen ties broken by id
    mat = load_interaction_matrix(con, D1, D1, entity="session")
    assert mat.shape == (2, 2) and mat.nnz == 3
    assert vocab_sizes(con) == {"n_items": 2, "n_users": 0, "n_sessions": 2}
    assert con.sql("SELECT count(*) FROM features.interactions").fetchall() == [(3,)]


def test_temporal_split_sessions_and_user_targets(con):
    run = date(2024, 3, 4)  # D; valid = Mar 3; train = Mar 1-2
    day = lambda d, hh, mm=0: datetime(2024, 3, d, hh, mm)  # noqa: E731
    _insert(
        con,
        [
            ("tr1", "u1", "a", day(1, 10)),
            ("tr1", "u1", "b", day(1, 10, 1)),
            ("tr2", "u2", "b", day(2, 10)),
            ("tr2", "u2", "c", day(2, 10, 1)),
            ("va1", "u1", "c", day(3, 10)),
            ("va1", "u1", "d", day(3, 10, 1)),
            ("va1", "u1", "a", day(3, 10, 2)),
            # crosses midnight into D: a test session, its D-1 event is u2's history
            ("te1", "u2", "d", day(3, 23, 59)),
            ("te1", "u2", "a", day(4, 0, 1)),
            ("te1", "u2", "b", day(4, 0, 2)),
            ("te2", "u1", "e", day(4, 9)),
            ("te2", "u1", "c", day(4, 9, 1)),  # e never seen before D
            ("te3", "u3", "a", day(4, 9)),
            ("te3", "u3", "b", day(4, 9, 1)),  # u3 has no history
        ],
    )
    build_features(con, date(2024, 3, 1), run, KEEP_ALL)
    with pytest.raises(ValueError, match="covers"):
        temporal_split(con, run, train_days=5)
    spec = temporal_split(con, run, train_days=3)
    assert (spec.train_start, spec.train_end, spec.valid_day, spec.test_day) == (
        date(2024, 3, 1),
        date(2024, 3, 2),
        date(2024, 3, 3),
        run,
    )
    v = _vocab(con)
    s = load_session_split(con, spec)
    assert s.train.session_ids.tolist() == ["tr1", "tr2"]
    assert s.train_full.session_ids.tolist() == ["tr1", "tr2", "va1"]
    # valid: d is unknown to train (Mar 1-2) and dropped
    assert s.valid.session_ids.tolist() == ["va1"] and s.valid.items.tolist() == [v["c"], v["a"]]
    # test: te2 loses e (unknown before D) and is then too short; te1 whole
    assert s.test.session_ids.tolist() == ["te1", "te3"]
    assert s.test.items.tolist() == [v["d"], v["a"], v["b"], v["a"], v["b"]]

    u = load_user_split(con, spec)
    users = dict(con.sql("SELECT user_id, user_idx FROM features.user_vocab").fetchall())
    # test targets: u1 -> c is history (va1) and e unknown: nothing; u2 -> a (b, d are history); u3 no history
    assert u.test.users.tolist() == [users["u2"]] and u.test.targets.tolist() == [v["a"]]
    hist = u.test.history.toarray()[0]
    assert set(np.flatnonzero(hist)) == {v["b"], v["c"], v["d"]}
    np.testing.assert_array_equal(u.test.exclude.toarray(), u.test.history.toarray())
    # valid targets (Mar 3): u1 -> c (known from tr2, not in u1's history); d unknown; a is history
    # u2 -> d is unknown before Mar 3
    assert u.valid.users.tolist() == [users["u1"]] and u.valid.targets.tolist() == [v["c"]]
    assert u.train.matrix.nnz == 4 and u.train_full.matrix.nnz == 4 + 2 + 1

    # Two validation days (Mar 2-3): training shrinks to Mar 1, the test day and train_full do not move.
    with pytest.raises(ValueError, match="valid_days"):
        temporal_split(con, run, train_days=2, valid_days=2)
    two = temporal_split(con, run, train_days=3, valid_days=2)
    assert (two.train_end, two.valid_from, two.valid_day) == (date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3))
    s2, u2 = load_session_split(con, two), load_user_split(con, two)
    assert s2.train.session_ids.tolist() == ["tr1"] and s2.train_full.session_ids.tolist() == s.train_full.session_ids.tolist()
    # tr2 (Mar 2) now validates: c is unknown to Mar 1 and dropped, leaving one event: too short
    assert s2.valid.n_sessions == 0
    # u2's Mar 2 clicks are targets now, but u2 has no history on Mar 1; u1's c is unknown to Mar 1
    assert u2.valid.users.tolist() == [] and u2.train.matrix.nnz == 2
    assert u2.test.targets.tolist() == u.test.targets.tolist()


def test_weighted_interactions_sum_event_weights(con):
    """raw.clicks.weight (a profile's event-type weights, e.g. view 1 / cart 3 / purchase 5) becomes
    the interaction strength: weighting="weight" sums it; a collapsed run of repeats counts once, with
    the largest weight of the run; features.interactions stores the same sum."""
    m = timedelta(minutes=1)
    _insert(
        con,
        [
            ("s1", "u1", "a", T0),  # view
            ("s1", "u1", "a", T0 + m),  # cart of the same item right after: collapsed into one event
            ("s1", "u1", "b", T0 + 2 * m),  # view
            ("s1", "u1", "a", T0 + 3 * m),  # purchase: not consecutive, counted again
            ("s2", "u2", "b", T0),  # purchase
            ("s2", "u2", "a", T0 + m),  # default weight
        ],
        weights=[1.0, 3.0, 1.0, 5.0, 5.0, 1.0],
    )
    build_features(con, D1, D1, KEEP_ALL)
    v = _vocab(con)
    users = dict(con.sql("SELECT user_id, user_idx FROM features.user_vocab").fetchall())
    expected = np.zeros((2, 2), dtype=np.float32)
    expected[users["u1"], v["a"]] = 3.0 + 5.0  # max(view, cart) + purchase
    expected[users["u1"], v["b"]] = 1.0
    expected[users["u2"], v["b"]] = 5.0
    expected[users["u2"], v["a"]] = 1.0
    weighted = load_interaction_matrix(con, D1, D1, weighting="weight")
    assert weighted.dtype == np.float32 and weighted.has_sorted_indices
    np.testing.assert_array_equal(weighted.toarray(), expected)
    count = load_interaction_matrix(con, D1, D1, weighting="count")
    assert count[users["u1"], v["a"]] == 2  # the collapse is unchanged by weights
    assert con.sql("SELECT weight FROM features.session_events ORDER BY session_id, position").fetchall() == [
        (3.0,), (1.0,), (5.0,), (5.0,), (1.0,)]
    stored = con.sql("SELECT user_idx, item_idx, weight FROM features.interactions ORDER BY ALL").fetchall()
    assert stored == [(int(r), int(c), float(expected[r, c])) for r, c in np.argwhere(expected)]


def test_weights_without_collapse_keep_each_event(con):
    _insert(con, [("s1", "u1", "a", T0), ("s1", "u1", "a", T0 + timedelta(minutes=1))], weights=[1.0, 3.0])
    build_features(con, D1, D1, FeatureConfig(min_item_support=1, min_session_length=1, collapse_repeats=False))
    assert load_interaction_matrix(con, D1, D1, weighting="weight").toarray().tolist() == [[4.0]]
    with pytest.raises(ValueError, match="unknown weighting"):
        load_interaction_matrix(con, D1, D1, weighting="max")
