"""Baselines on tiny hand-made cases with known answers, and V-SkNN against a loop port of session-rec."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recmodels.baselines.ease import EASE
from recmodels.baselines.itemknn import ItemKNN
from recmodels.baselines.pop import MostPopular
from recmodels.baselines.spop import SessionPopular
from recmodels.baselines.vsknn import VSKNN
from recmodels.checkpoint import load_checkpoint
from recmodels.data import Interactions, Sessions
from recmodels.registry import model_class


def _sessions(lists, n_items, times=None) -> Sessions:
    offsets = np.concatenate([[0], np.cumsum([len(x) for x in lists])]).astype(np.int64)
    t = None if times is None else np.concatenate(times).astype(np.float64)
    return Sessions(items=np.concatenate(lists).astype(np.int64), offsets=offsets, n_items=n_items, times=t)


@pytest.mark.parametrize("name", ["pop", "spop", "itemknn", "vsknn", "ease"])
def test_registry_names(name):
    assert model_class(name).name == name


def test_most_popular_serves_sessions_and_users():
    m = MostPopular(device="cpu")
    m.fit(_sessions([[0, 1, 1], [1, 2]], n_items=4))
    s = m.score_next(_sessions([[3], [0, 2]], n_items=4))
    assert s.shape == (3, 4)
    assert torch.equal(s, torch.tensor([[1.0, 3.0, 1.0, 0.0]]).expand(3, 4))
    u = MostPopular(device="cpu")
    u.fit(Interactions(sp.csr_matrix(np.array([[1, 0, 1], [1, 0, 0], [1, 1, 0]], dtype=np.float32))))
    assert u.score_users(np.array([0, 2]), sp.csr_matrix((2, 3))).tolist() == [[3.0, 1.0, 1.0]] * 2
    idx, val = u.similar_items(2)
    assert idx.tolist() == [[1, 2], [0, 2], [0, 1]] or idx.tolist() == [[2, 1], [0, 2], [0, 1]]
    assert (idx != torch.arange(3)[:, None]).all()  # never its own neighbour
    assert val[1].tolist() == [3.0, 1.0]


def test_spop_puts_session_items_first_then_popularity():
    m = SessionPopular(device="cpu")
    m.fit(_sessions([[0, 1, 1], [1, 2], [3, 3, 3, 3]], n_items=4))  # pop = 1, 3, 1, 4
    prior = np.array([1 / 2, 3 / 4, 1 / 2, 4 / 5])
    s = m.score_next(_sessions([[2, 0, 2], [1]], n_items=4)).numpy()
    expected = np.array([[0, 0, 1, 0], [1, 0, 1, 0], [1, 0, 2, 0], [0, 1, 0, 0]]) + prior
    assert np.allclose(s, expected)
    # after one click on item 2 it outranks the most popular item 3; the next session starts afresh
    assert s[0].argmax() == 2 and s[3].argmax() == 1


def test_itemknn_regularised_cosine_on_click_counts():
    train = _sessions([[0, 1], [0, 1, 2], [1, 2], [0, 0, 1]], n_items=4)
    m = ItemKNN({"n_sims": 10, "lmbd": 1.0, "alpha": 0.25}, device="cpu")
    m.fit(train)
    # click counts: supp = [4, 4, 2, 0]; co-occurrence C01 = 1 + 1 + 2*1 = 4, C02 = 1, C12 = 2
    supp = np.array([4.0, 4.0, 2.0, 0.0])

    def sim(i, j, c):
        return c / ((supp[i] + 1.0) ** 0.25 * (supp[j] + 1.0) ** 0.75)

    s = m.score_next(_sessions([[3, 2], [0]], n_items=4)).numpy()
    assert np.allclose(s[1], [sim(2, 0, 1), sim(2, 1, 2), 0.0, 0.0])  # row of the last click (2)
    assert np.allclose(s[0], 0.0)  # item 3 never co-occurs
    assert np.allclose(s[2], [0.0, sim(0, 1, 4), sim(0, 2, 1), 0.0])
    one = ItemKNN({"n_sims": 1, "lmbd": 1.0, "alpha": 0.25}, device="cpu")
    one.fit(train)
    idx, val = one.similar_items(5)
    assert idx[0].tolist() == [1] and idx[3].tolist() == [-1]  # top-1 kept; no neighbours padded with -1
    assert val[0, 0] == pytest.approx(sim(0, 1, 4))


def test_ease_matches_the_closed_form_and_constrained_least_squares():
    rng = np.random.default_rng(0)
    x = (rng.random((40, 9)) < 0.3).astype(np.float64)
    lam = 3.0
    m = EASE({"l2": lam}, device="cpu")
    m.fit(Interactions(sp.csr_matrix(x.astype(np.float32))))
    p = np.linalg.inv(x.T @ x + lam * np.eye(9))
    b = np.eye(9) - p / np.diag(p)[None, :]
    assert np.allclose(m.B.numpy(), b, atol=1e-5)
    assert np.allclose(np.diag(m.B.numpy()), 0.0)
    # the paper's problem column by column: ridge regression of item j on all other items
    for j in (0, 4):
        others = [k for k in range(9) if k != j]
        xo = x[:, others]
        col = np.linalg.solve(xo.T @ xo + lam * np.eye(8), xo.T @ x[:, j])
        assert np.allclose(m.B.numpy()[others, j], col, atol=1e-5)
    scores = m.score_users(np.arange(5), sp.csr_matrix(x[:5])).numpy()
    assert np.allclose(scores, x[:5] @ b, atol=1e-5)
    assert m.item_vectors() is None
    idx, _ = m.similar_items(3)
    assert (idx != torch.arange(9)[:, None]).all()


# ----------------------------------------------------------------------------- V-SkNN


def _ref_vsknn(
    train_lists, train_times, prefix, n_items, k, sample_size, weighting, weighting_score, idf_weighting
):
    """Direct port of session-rec VMContextKNN.predict_next for one prefix (loops, sets, dicts)."""
    items_of = {s: set(x) for s, x in enumerate(train_lists)}
    time_of = {s: max(t) for s, t in enumerate(train_times)}
    sessions_of: dict[int, set] = {}
    clicks: dict[int, int] = {}
    for s, x in enumerate(train_lists):
        for i in x:
            sessions_of.setdefault(i, set()).add(s)
            clicks[i] = clicks.get(i, 0) + 1
    idf = {i: math.log(len(train_lists) / c) for i, c in clicks.items()}
    relevant = set()
    for i in prefix:
        relevant |= sessions_of.get(i, set())
    if len(relevant) > sample_size:
        relevant = set(sorted(relevant, key=lambda s: -time_of[s])[:sample_size])
    n = len(prefix)
    wfun = {
        "div": lambda i: i / n,
        "linear": lambda i: 1 - 0.1 * (n - i) if i <= 10 else 0,
        "quadratic": lambda i: (i / n) ** 2,
        "log": lambda i: 1 / math.log10((n - i) + 1.7),
    }[weighting]
    dfun = {
        "div": lambda s: 1 / s,
        "quadratic": lambda s: 1 / (s * s),
        "log": lambda s: 1 / math.log10(s + 1.7),
    }[weighting_score]
    pos_map = {}
    for count, item in enumerate(prefix, start=1):
        pos_map[item] = wfun(count)
    neigh = []
    for s in relevant:
        sim = sum(pos_map[i] for i in set(prefix) & items_of[s]) / len(pos_map)
        if sim > 0:
            neigh.append((s, sim))
    neigh = sorted(neigh, key=lambda t: (-t[1], -time_of[t[0]]))[:k]
    scores = np.zeros(n_items)
    for s, sim in neigh:
        step = 1
        for item in reversed(prefix):
            if item in items_of[s]:
                decay = dfun(step)
                break
            step += 1
        for item in items_of[s]:
            new = sim if not idf_weighting else sim + sim * idf[item] * idf_weighting
            scores[item] += new * decay
    return scores


@pytest.mark.parametrize(
    "cfg",
    [
        {"k": 100, "sample_size": 1000, "weighting": "div", "weighting_score": "div", "idf_weighting": 0.0},
        {"k": 4, "sample_size": 9, "weighting": "div", "weighting_score": "div", "idf_weighting": 1.0},
        {
            "k": 6,
            "sample_size": 15,
            "weighting": "linear",
            "weighting_score": "quadratic",
            "idf_weighting": 0.0,
        },
        {"k": 3, "sample_size": 30, "weighting": "quadratic", "weighting_score": "log", "idf_weighting": 5.0},
        {"k": 8, "sample_size": 20, "weighting": "log", "weighting_score": "div", "idf_weighting": 0.0},
    ],
)
def test_vsknn_matches_a_loop_port_of_session_rec(cfg):
    rng = np.random.default_rng(42)
    n_items = 18
    train_lists = [list(rng.integers(0, n_items, size=rng.integers(1, 7))) for _ in range(120)]
    # distinct clocks; sessions listed out of time order so recency is really read from the times
    starts = rng.permutation(len(train_lists)) * 100.0
    train_times = [list(s + np.arange(len(x)) * 1.5) for s, x in zip(starts, train_lists, strict=True)]
    test_lists = [list(rng.integers(0, n_items, size=rng.integers(2, 14))) for _ in range(12)]
    m = VSKNN({**cfg, "batch_events": 17}, device="cpu")
    m.fit(_sessions(train_lists, n_items, train_times))
    got = m.score_next(_sessions(test_lists, n_items)).numpy()
    row = 0
    for lst in test_lists:
        for t in range(len(lst)):
            want = _ref_vsknn(train_lists, train_times, lst[: t + 1], n_items, **cfg)
            assert np.allclose(got[row], want, rtol=1e-5, atol=1e-6), (lst[: t + 1], cfg)
            row += 1
    assert row == len(got)


def test_vsknn_hand_case_recent_neighbours_and_step_decay():
    # training sessions (times increase with the index): s0 = {0, 1}, s1 = {1, 2}, s2 = {2, 3}, s3 = {0, 4}
    train = _sessions([[0, 1], [1, 2], [2, 3], [0, 4]], n_items=6, times=[[1, 2], [3, 4], [5, 6], [7, 8]])
    m = VSKNN({"k": 100, "sample_size": 100, "idf_weighting": 0.0}, device="cpu")
    m.fit(train)
    s = m.score_next(_sessions([[0, 2]], n_items=6)).numpy()
    # prefix [0, 2]: weights 0 -> 1/2, 2 -> 2/2; sim = dot / 2 distinct items
    # s0 (has 0, step 2): 0.25 * 1/2; s1 and s2 (have 2, step 1): 0.5; s3 (has 0, step 2): 0.25 * 1/2
    want = np.zeros(6)
    for items, w in [([0, 1], 0.125), ([1, 2], 0.5), ([2, 3], 0.5), ([0, 4], 0.125)]:
        want[items] += w
    assert np.allclose(s[1], want)
    assert s[1, 5] == 0.0 and s[1].argmax() == 2
    # sample_size 1 keeps only the most recent session holding a prefix item
    one = VSKNN({"k": 100, "sample_size": 1, "idf_weighting": 0.0}, device="cpu")
    one.fit(train)
    s1 = one.score_next(_sessions([[0, 2]], n_items=6)).numpy()
    assert np.flatnonzero(s1[1]).tolist() == [0, 4]  # s3 only


def test_unknown_prefix_items_are_ignored_not_errors():
    train = _sessions([[0, 1], [1, 2]], n_items=3, times=[[1, 2], [3, 4]])
    test = _sessions([[7, 1], [8]], n_items=9)
    for m in (
        VSKNN(device="cpu"),
        ItemKNN(device="cpu"),
        SessionPopular(device="cpu"),
        MostPopular(device="cpu"),
    ):
        m.fit(train)
        s = m.score_next(test)
        assert s.shape[0] == 3 and s.shape[1] == 3
        assert torch.isfinite(s).all()


def test_checkpoint_roundtrip_keeps_scores(tmp_path):
    train = _sessions(
        [[0, 1, 2], [1, 2], [3, 1], [0, 3, 3]], n_items=5, times=[[1, 2, 3], [4, 5], [6, 7], [8, 9, 10]]
    )
    test = _sessions([[0, 3], [2]], n_items=5)
    for cls in (MostPopular, SessionPopular, ItemKNN, VSKNN):
        m = cls(device="cpu")
        m.fit(train)
        path = m.save(tmp_path / cls.name)
        state, meta = load_checkpoint(path)
        fresh = cls(device="cpu")
        fresh.load_state_dict(state)
        assert meta["model"] == cls.name and fresh.n_items == 5
        assert torch.allclose(fresh.score_next(test), m.score_next(test))
    x = sp.csr_matrix(np.array([[1, 0, 1, 0], [1, 1, 0, 0], [0, 1, 1, 1]], dtype=np.float32))
    e = EASE(device="cpu")
    e.fit(Interactions(x))
    state, _ = load_checkpoint(e.save(tmp_path / "ease"))
    fresh = EASE(device="cpu")
    fresh.load_state_dict(state)
    assert torch.allclose(fresh.score_users(np.arange(3), x), e.score_users(np.arange(3), x))


def test_score_last_equals_the_last_row_of_score_next():
    rng = np.random.default_rng(3)
    train_lists = [list(rng.integers(0, 15, size=rng.integers(1, 6))) for _ in range(60)]
    times = [list(i * 10.0 + np.arange(len(x))) for i, x in enumerate(train_lists)]
    train = _sessions(train_lists, 15, times)
    test = _sessions([list(rng.integers(0, 15, size=rng.integers(1, 9))) for _ in range(9)], 15)
    last_rows = torch.from_numpy(test.offsets[1:] - 1)
    for m in (
        MostPopular(device="cpu"),
        SessionPopular(device="cpu"),
        ItemKNN(device="cpu"),
        VSKNN({"k": 5, "sample_size": 12, "batch_events": 7}, device="cpu"),
    ):
        m.fit(train)
        full = m.score_next(test)
        assert torch.allclose(m.score_last(test), full[last_rows], atol=1e-6), m.name


@pytest.mark.slow
def test_vsknn_reaches_the_published_p1_level(shared_data):
    """session-rec reports V-SkNN at about HR@20 0.688 / MRR@20 0.367 on rsc15-100k; its evaluation
    breaks score ties in sort order, ours counts them against the target, so allow a small gap."""
    from tasks.tools.evaluate import run_evaluation

    res = run_evaluation("P1", "vsknn", shared_data)
    assert res["n_predictions"] == 10_152
    assert 0.675 <= res["metrics"]["HR@20"] <= 0.70
    assert 0.355 <= res["metrics"]["MRR@20"] <= 0.38
