"""Beyond-accuracy figures (recmodels.beyond): hand-computed values on tiny inputs, and agreement with
the one protocol runner (the recorder must not change a single accuracy figure)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recmodels.baselines.pop import MostPopular
from recmodels.beyond import (
    evaluate_sessions_beyond,
    evaluate_users_beyond,
    head_items,
    item_counts,
    list_figures,
    popularity_percentile,
    self_information,
    session_predictions,
)
from recmodels.data import Interactions, Sessions, UserTargets
from recmodels.protocols import evaluate_sessions, evaluate_users

# Training popularity of 5 items: sorted counts 0, 1, 3, 3, 5 (total 12).
COUNTS = np.array([5, 3, 3, 0, 1])
# Every row scores item 1 > 2 > 3 > 4 > 0.
FIXED = torch.tensor([0.1, 0.5, 0.4, 0.3, 0.2])


class FixedScores:
    """A model that gives every prefix and every user the same scores (hand-rankable)."""

    n_items = 5
    device = torch.device("cpu")

    def score_next(self, sessions: Sessions) -> torch.Tensor:
        return FIXED.repeat(len(sessions.items), 1)

    def score_last(self, sessions: Sessions) -> torch.Tensor:
        return FIXED.repeat(sessions.n_sessions, 1)

    def score_users(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        return FIXED.repeat(len(users), 1)


def _sessions(rows: list[list[int]], n_items: int = 5) -> Sessions:
    offsets = np.cumsum([0, *map(len, rows)]).astype(np.int64)
    return Sessions(items=np.array([i for r in rows for i in r], dtype=np.int64), offsets=offsets, n_items=n_items)


def test_item_figures_by_hand() -> None:
    # percentile = share of items with count <= c: 5 -> 5/5, 3 -> 4/5, 0 -> 1/5, 1 -> 2/5
    assert popularity_percentile(COUNTS).tolist() == pytest.approx([1.0, 0.8, 0.8, 0.2, 0.4])
    # -log2(max(c, 1) / 12)
    assert self_information(COUNTS).tolist() == pytest.approx(
        [math.log2(12 / 5), 2.0, 2.0, math.log2(12), math.log2(12)]
    )
    # head: percentile above 0.8 (the top fifth), seen in training -> item 0 only
    assert head_items(COUNTS).tolist() == [True, False, False, False, False]
    assert item_counts(_sessions([[0, 0, 1], [4]]), 5).tolist() == [2, 1, 0, 0, 1]
    assert item_counts(sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 1.0]])), 4).tolist() == [1, 0, 2, 0]


def test_list_figures_by_hand() -> None:
    top = np.array([[1, 2], [1, 3], [4, -1]])  # -1: an empty slot (fewer candidates than k)
    out = list_figures(top, COUNTS, ks=(1, 2))
    assert out["COVERAGE@1"] == pytest.approx(2 / 5)  # items 1 and 4
    assert out["COVERAGE@2"] == pytest.approx(4 / 5)  # items 1, 2, 3, 4
    assert out["POPULARITY@2"] == pytest.approx((0.8 + 0.8 + 0.8 + 0.2 + 0.4) / 5)
    assert out["NOVELTY@1"] == pytest.approx((2 + 2 + math.log2(12)) / 3)
    assert out["TAIL@2"] == 1.0
    assert list_figures(np.array([[0, 1]]), COUNTS, ks=(2,))["TAIL@2"] == 0.5


def test_session_predictions_follow_the_runner_order() -> None:
    targets, prefix = session_predictions(_sessions([[0, 1, 3], [4, 0], [2]]))
    assert targets.tolist() == [1, 3, 0] and prefix.tolist() == [1, 2, 1]


def test_sessions_beyond_by_hand() -> None:
    # Predictions: (prefix [0] -> 1, rank 1), ([0, 1] -> 3, rank 3), ([4] -> 0, rank 5); top-2 = [1, 2].
    out = evaluate_sessions_beyond(FixedScores(), _sessions([[0, 1, 3], [4, 0], [2]]), COUNTS, ks=(2,))
    m = out["metrics"]
    assert out["n_predictions"] == 3 and m["HR@2"] == pytest.approx(1 / 3)
    assert m["COVERAGE@2"] == pytest.approx(2 / 5)
    assert m["POPULARITY@2"] == pytest.approx(0.8) and m["NOVELTY@2"] == pytest.approx(2.0)
    assert m["TAIL@2"] == 1.0
    # head target: item 0 (rank 5); tail targets: items 1 (rank 1) and 3 (rank 3)
    assert (m["n:head"], m["HR:head@2"], m["NDCG:head@2"]) == (1, 0.0, 0.0)
    assert (m["n:tail"], m["HR:tail@2"], m["NDCG:tail@2"]) == (2, 0.5, 0.5)
    # prefix length 1: ranks 1 and 5; length 2: rank 3; longer buckets empty
    assert (m["n:len:1"], m["HR:len:1@2"]) == (2, 0.5)
    assert (m["n:len:2"], m["HR:len:2@2"]) == (1, 0.0)
    assert m["n:len:10+"] == 0 and "HR:len:10+@2" not in m
    assert "ranks" not in out


def test_users_beyond_by_hand() -> None:
    # user 0 (1 item seen: new) excludes item 1 -> 2, 3, 4, 0: target 4 at rank 3, top-2 [2, 3];
    # user 1 (4 items seen: returning) excludes 0..3 -> only 4: target 4 at rank 1, top-2 [4, empty].
    history = sp.csr_matrix(np.array([[0, 1, 0, 0, 0], [1, 1, 1, 1, 0]], dtype=np.float32))
    targets = UserTargets(users=np.array([0, 1]), targets=np.array([4, 4]), history=history, exclude=history)
    m = evaluate_users_beyond(FixedScores(), targets, COUNTS, ks=(2,))["metrics"]
    assert m["HR@2"] == 0.5
    assert m["COVERAGE@2"] == pytest.approx(3 / 5)
    assert m["POPULARITY@2"] == pytest.approx((0.8 + 0.2 + 0.4) / 3)
    assert m["NOVELTY@2"] == pytest.approx((2 + 2 * math.log2(12)) / 3)
    assert (m["n:new"], m["HR:new@2"]) == (1, 0.0)
    assert (m["n:returning"], m["HR:returning@2"], m["NDCG:returning@2"]) == (1, 1.0, 1.0)
    assert m["n:head"] == 0 and "HR:head@2" not in m and m["n:tail"] == 2


def _random_sessions(rng: np.random.Generator, n: int, n_items: int) -> Sessions:
    return _sessions([list(rng.integers(0, n_items, rng.integers(1, 9))) for _ in range(n)], n_items)


def test_recorder_changes_no_accuracy_figure_and_chunks_agree() -> None:
    rng = np.random.default_rng(0)
    train, test = _random_sessions(rng, 200, 40), _random_sessions(rng, 60, 40)
    model = MostPopular()
    model.fit(train)
    counts = item_counts(train, 40)
    plain = evaluate_sessions(model, test, ks=(5, 20))
    beyond = evaluate_sessions_beyond(model, test, counts, ks=(5, 20))
    chunked = evaluate_sessions_beyond(model, test, counts, ks=(5, 20), chunk_events=7)
    for key, value in plain["metrics"].items():
        assert beyond["metrics"][key] == pytest.approx(value)
    # The runner's own COV@k and the recorder's COVERAGE@k are two implementations of one definition.
    assert beyond["metrics"]["COVERAGE@5"] == pytest.approx(plain["metrics"]["COV@5"])
    assert chunked["metrics"] == pytest.approx(beyond["metrics"])
    # every prediction is in exactly one head/tail segment and one length bucket
    m = beyond["metrics"]
    assert m["n:head"] + m["n:tail"] == plain["n_predictions"]
    assert sum(v for k, v in m.items() if k.startswith("n:len:")) == plain["n_predictions"]


def test_users_recorder_agrees_with_runner_in_chunks() -> None:
    rng = np.random.default_rng(1)
    matrix = sp.csr_matrix((rng.random((30, 25)) < 0.2).astype(np.float32))
    model = MostPopular()
    model.fit(Interactions(matrix))
    users = np.repeat(np.arange(30), 2)
    targets = UserTargets(users=users, targets=rng.integers(0, 25, len(users)), history=matrix[users],
                          exclude=matrix[users])
    plain = evaluate_users(model, targets, ks=(10,))
    one = evaluate_users_beyond(model, targets, item_counts(matrix, 25), ks=(10,))
    small = evaluate_users_beyond(model, targets, item_counts(matrix, 25), ks=(10,), chunk_users=7)
    assert one["metrics"]["HR@10"] == pytest.approx(plain["metrics"]["HR@10"])
    assert one["metrics"]["COVERAGE@10"] == pytest.approx(plain["metrics"]["COV@10"])
    assert small["metrics"] == pytest.approx(one["metrics"])


class Successor(FixedScores):
    """Scores item (i + 1) mod 5 highest after item i: each prefix gets its own list."""

    def score_next(self, sessions: Sessions) -> torch.Tensor:
        distance = (torch.arange(5)[None, :] - torch.from_numpy(sessions.items)[:, None] - 1) % 5
        return -distance.float()


def test_lists_are_those_of_the_predictions_only() -> None:
    # Predictions after events 0 and 1 of [0, 1, 3] and after 4 of [4, 0]: top-1 lists 1, 2, 0. The
    # rows after each session's last event (3 -> 4, 0 -> 1) predict nothing and must not count.
    m = evaluate_sessions_beyond(Successor(), _sessions([[0, 1, 3], [4, 0]]), COUNTS, ks=(1,))["metrics"]
    assert m["COVERAGE@1"] == pytest.approx(3 / 5)
    assert m["POPULARITY@1"] == pytest.approx((0.8 + 0.8 + 1.0) / 3)
    assert m["HR@1"] == pytest.approx(2 / 3)  # 0 -> 1 hit, 1 -> 3 miss (2 first), 4 -> 0 hit
