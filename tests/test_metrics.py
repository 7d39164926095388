"""recmodels.metrics: conservative ties, exclusion, NaN handling, batch invariance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recmodels.metrics import RankingMetrics, target_ranks


def test_rank_counts_ties_against_the_target():
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.5, 0.1]])
    # target 0 scores 0.5: item 1 is above, items 2 and 3 tie -> rank 1 + 3
    assert target_ranks(scores, torch.tensor([0])).tolist() == [4]
    assert target_ranks(scores, torch.tensor([1])).tolist() == [1]
    assert target_ranks(scores, torch.tensor([4])).tolist() == [5]


def test_constant_scores_get_no_credit():
    scores = torch.zeros(3, 50)
    ranks = target_ranks(scores, torch.tensor([0, 17, 49]))
    assert ranks.tolist() == [50, 50, 50]
    acc = RankingMetrics(ks=(10, 20))
    acc.add(scores, torch.tensor([0, 17, 49]))
    res = acc.result()
    assert res["HR@20"] == 0.0 and res["MRR@20"] == 0.0 and res["NDCG@10"] == 0.0


def test_exclusion_removes_candidates_but_never_the_target():
    scores = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    target = torch.tensor([2])
    exclude = torch.tensor([[True, False, True, False]])  # item 0 above the target is excluded
    assert target_ranks(scores, target).tolist() == [3]
    assert target_ranks(scores, target, exclude).tolist() == [2]  # the target's own exclusion is ignored


def test_nan_scores_are_worst():
    scores = torch.tensor([[float("nan"), 1.0, 0.5], [2.0, float("nan"), 1.0]])
    ranks = target_ranks(scores, torch.tensor([0, 2]))
    assert ranks.tolist() == [
        3,
        2,
    ]  # a NaN target loses to everything; a NaN rival never wins (only 2.0 does)


def test_metric_formulas_on_known_ranks():
    # three predictions whose ranks are 1, 3 and 25 (over 30 items)
    scores = torch.arange(30, 0, -1, dtype=torch.float32).repeat(3, 1)
    targets = torch.tensor([0, 2, 24])
    acc = RankingMetrics(ks=(10, 20))
    ranks = acc.add(scores, targets)
    assert ranks.tolist() == [1, 3, 25]
    res = acc.result()
    assert res["HR@20"] == pytest.approx(2 / 3)
    assert res["MRR@20"] == pytest.approx((1 + 1 / 3) / 3)
    assert res["NDCG@20"] == pytest.approx((1 + 1 / math.log2(4)) / 3)
    assert res["HR@10"] == pytest.approx(2 / 3)
    assert acc.n == 3


def test_accumulation_is_batch_invariant():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 5, (40, 30), generator=gen).float()  # many ties on purpose
    targets = torch.randint(0, 30, (40,), generator=gen)
    exclude = torch.rand(40, 30, generator=gen) < 0.2
    whole = RankingMetrics(ks=(5, 10), n_items=30)
    whole.add(scores, targets, exclude)
    parts = RankingMetrics(ks=(5, 10), n_items=30)
    for a, b in [(0, 7), (7, 8), (8, 40)]:
        parts.add(scores[a:b], targets[a:b], exclude[a:b])
    assert parts.n == whole.n == 40
    for key, value in whole.result().items():
        assert parts.result()[key] == pytest.approx(value), key


def test_ranks_match_a_numpy_reference():
    rng = np.random.default_rng(1)
    s = rng.integers(0, 4, size=(25, 12)).astype(np.float32)
    t = rng.integers(0, 12, size=25)
    ex = rng.random((25, 12)) < 0.3
    ex[np.arange(25), t] = False
    expected = ((s >= s[np.arange(25), t][:, None]) & ~ex).sum(axis=1)
    got = target_ranks(torch.from_numpy(s), torch.from_numpy(t), torch.from_numpy(ex))
    assert got.tolist() == expected.tolist()
