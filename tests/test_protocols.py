"""The protocol runner and the shared-data readers (PROTOCOLS.md P1, P2, P3)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
import torch

from recmodels.base import SessionRecommender, UserRecommender
from recmodels.data import Sessions, UserTargets
from recmodels.protocols import (
    evaluate_sessions,
    evaluate_similarity,
    evaluate_user_sequences,
    evaluate_users,
    session_pairs,
    take_sessions,
    user_last_pairs,
    user_last_train_pairs,
)


def _sessions(lists: list[list[int]], n_items: int) -> Sessions:
    offsets = np.concatenate([[0], np.cumsum([len(x) for x in lists])]).astype(np.int64)
    return Sessions(items=np.concatenate(lists).astype(np.int64), offsets=offsets, n_items=n_items)


class _Peek(SessionRecommender):
    """Test double: row r scores the item at events[r + shift] highest (shift 1 = a perfect oracle)."""

    name = "peek"

    def __init__(self, n_items: int, shift: int) -> None:
        super().__init__(device="cpu")
        self.n_items, self.shift = n_items, shift
        self.calls: list[int] = []

    def fit(self, train, valid=None):
        raise AssertionError("a fixed-score test double is never trained")

    def score_next(self, sessions: Sessions) -> torch.Tensor:
        self.calls.append(len(sessions.items))
        n = len(sessions.items)
        nxt = sessions.items[np.minimum(np.arange(n) + self.shift, n - 1)]
        out = torch.zeros(n, self.n_items)
        out[torch.arange(n), torch.from_numpy(nxt)] = 1.0
        return out


def test_sessions_runner_pairs_each_prefix_with_the_next_click():
    test = _sessions([[0, 1, 2], [3, 4], [5, 5, 6, 0]], n_items=8)
    oracle = evaluate_sessions(_Peek(8, shift=1), test, ks=(1, 5))
    assert oracle["n_predictions"] == 2 + 1 + 3
    assert oracle["metrics"]["HR@1"] == 1.0 and oracle["metrics"]["MRR@5"] == 1.0
    # scoring the current click instead of the next only hits on the repeat 5 -> 5
    lagged = evaluate_sessions(_Peek(8, shift=0), test, ks=(1, 5))
    assert lagged["metrics"]["HR@5"] == pytest.approx(1 / 6)


def test_sessions_runner_is_chunk_invariant_and_chunks_whole_sessions():
    rng = np.random.default_rng(0)
    lists = [list(rng.integers(0, 20, size=rng.integers(2, 7))) for _ in range(30)]
    test = _sessions(lists, n_items=20)

    class Noisy(_Peek):
        def score_next(self, sessions):
            self.calls.append(len(sessions.items))
            # each row depends on its own click only (ties included), so chunking cannot change ranks
            return torch.from_numpy(np.eye(20, dtype=np.float32)[sessions.items] * 2 + np.arange(20) % 3)

    ref = evaluate_sessions(Noisy(20, 0), test, ks=(3, 10), return_ranks=True)
    for chunk in (1, 4, 11):
        model = Noisy(20, 0)
        got = evaluate_sessions(model, test, ks=(3, 10), chunk_events=chunk, return_ranks=True)
        assert np.array_equal(got["ranks"], ref["ranks"])
        assert got["metrics"] == pytest.approx(ref["metrics"])
        assert max(model.calls) <= max(chunk, max(len(x) for x in lists))
    assert ref["n_predictions"] == sum(len(x) - 1 for x in lists)


def test_items_unknown_to_the_model_are_misses():
    test = _sessions([[0, 1], [1, 9]], n_items=10)  # item 9 is newer than the model's 5-item vocabulary

    class Small(_Peek):
        def score_next(self, sessions):
            return torch.arange(5, 0, -1).float().expand(len(sessions.items), 5)  # item 0 best

    res = evaluate_sessions(Small(5, 0), test, ks=(2,), return_ranks=True)
    assert res["ranks"].tolist() == [2, 10]


def test_items_only_the_model_knows_stay_candidates():
    test = _sessions([[0, 1]], n_items=3)  # data vocabulary older than the model's 6 items

    class Wide(_Peek):
        def score_next(self, sessions):
            return torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0, 2.0]]).expand(len(sessions.items), 6)

    res = evaluate_sessions(Wide(6, 0), test, ks=(1,), return_ranks=True)
    assert res["ranks"].tolist() == [2]  # item 5 outranks the target even though the test data lacks it


class _FixedUser(UserRecommender):
    name = "fixed"

    def __init__(self, scores: np.ndarray) -> None:
        super().__init__(device="cpu")
        self.scores = torch.from_numpy(scores)
        self.seen_history: list[np.ndarray] = []

    def fit(self, train, valid=None):
        raise AssertionError("a fixed-score test double is never trained")

    def score_users(self, users, history):
        self.seen_history.append(history.toarray())
        return self.scores[torch.from_numpy(users)]


def test_users_runner_excludes_seen_items_and_passes_history():
    scores = np.array([[5, 4, 3, 2, 1], [5, 4, 3, 2, 1], [1, 1, 1, 1, 1]], dtype=np.float32)
    exclude = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 0, 0]], dtype=np.float32))
    history = sp.csr_matrix(np.eye(3, 5, dtype=np.float32))
    targets = UserTargets(
        users=np.array([0, 1, 2]), targets=np.array([2, 2, 0]), history=history, exclude=exclude
    )
    model = _FixedUser(scores)
    res = evaluate_users(model, targets, ks=(1, 3), chunk_users=2, return_ranks=True)
    # user 0: items 0, 1 removed -> rank 1; user 1: rank 3; user 2: all tie, 4 candidates left -> rank 4
    assert res["ranks"].tolist() == [1, 3, 4]
    assert res["metrics"]["HR@1"] == pytest.approx(1 / 3)
    assert np.array_equal(np.vstack(model.seen_history), history.toarray())


def test_user_sequences_runner_reads_the_last_prefix():
    seqs = _sessions([[0, 1, 2], [3, 4]], n_items=6)
    targets = UserTargets(
        users=np.array([1, 0]),
        targets=np.array([5, 3]),
        history=sp.csr_matrix((2, 6)),
        exclude=sp.csr_matrix(np.array([[0, 0, 0, 1, 1, 0], [1, 1, 1, 0, 0, 0]], dtype=np.float32)),
    )

    class NextIsPlusOne(_Peek):
        def score_next(self, sessions):
            out = torch.zeros(len(sessions.items), 6)
            out[torch.arange(len(sessions.items)), torch.from_numpy((sessions.items + 1) % 6)] = 1.0
            return out

    res = evaluate_user_sequences(NextIsPlusOne(6, 0), seqs, targets, ks=(1,), return_ranks=True)
    assert res["ranks"].tolist() == [1, 1]  # user 1 ends on 4 -> 5; user 0 ends on 2 -> 3


def test_take_sessions_gathers_in_any_order():
    s = _sessions([[0, 1], [2], [3, 4, 5]], n_items=6)
    t = take_sessions(s, np.array([2, 0, 2]))
    assert t.items.tolist() == [3, 4, 5, 0, 1, 3, 4, 5]
    assert t.offsets.tolist() == [0, 3, 5, 8]


def test_similarity_ranks_are_positions_with_conservative_ties_and_misses():
    idx = np.array([[1, 2, 3], [0, 2, -1], [0, 1, 3], [0, 1, 2]])
    score = np.array(
        [[0.9, 0.5, 0.5], [0.8, 0.1, -np.inf], [0.7, 0.6, 0.5], [0.3, 0.2, 0.1]], dtype=np.float32
    )
    src = np.array([0, 0, 0, 1, 1, 2, 7])
    tgt = np.array([1, 2, 3, 2, 3, 1, 0])
    res = evaluate_similarity(idx, score, src, tgt, ks=(1, 10), return_ranks=True)
    ranks = res["ranks"]
    assert ranks[:3].tolist() == [1, 3, 3]  # 2 and 3 tie at 0.5: both get the conservative rank
    assert ranks[3] == 2 and ranks[5] == 2
    assert ranks[4] > 10 and ranks[6] > 10  # absent from the list / source without a row: misses
    assert res["metrics"]["HR@10"] == pytest.approx(5 / 7)
    assert res["metrics"]["HR@1"] == pytest.approx(1 / 7)
    assert res["n_predictions"] == 7


def test_pair_builders():
    s = _sessions([[0, 1, 2], [3], [4, 5]], n_items=6)
    src, tgt = session_pairs(s)
    assert list(zip(src.tolist(), tgt.tolist(), strict=True)) == [(0, 1), (1, 2), (4, 5)]
    empty = sp.csr_matrix((3, 6))
    valid = UserTargets(np.array([2, 0, 1]), np.array([5, 3, 4]), empty, empty)
    test = UserTargets(np.array([0, 1]), np.array([1, 2]), empty[:2], empty[:2])
    vs, ts = user_last_pairs(valid, test)
    assert vs.tolist() == [3, 4] and ts.tolist() == [1, 2]


def test_p3_validation_pairs_are_last_train_item_to_validation_item() -> None:
    train_seqs = _sessions([[0, 5, 2], [], [4, 1]], n_items=6)  # user 1 has no train item
    empty = sp.csr_matrix((3, 6), dtype=np.float32)
    valid = UserTargets(np.array([0, 1, 2]), np.array([3, 0, 5]), empty, empty)
    src, tgt = user_last_train_pairs(train_seqs, valid)
    assert src.tolist() == [2, 1] and tgt.tolist() == [3, 5]


# ----------------------------------------------------------------------------- shared data

RSC = "rsc15-100k/yoochoose-clicks-100k_{}.txt"


def test_p1_counts(shared_data):
    from tasks.tools.protocol_data import load_p1

    train, test, info = load_p1(shared_data)
    assert train.n_sessions == 17_794 and train.n_items == 2_933 == info["n_items"]
    assert test.n_sessions == 3_416
    assert int((test.lengths - 1).sum()) == 10_152 == info["n_predictions"]
    assert test.lengths.min() >= 2
    # time order inside sessions, item ids mapped back to the originals
    t = test.times
    inside = np.ones(len(t) - 1, dtype=bool)
    inside[test.offsets[1:-1] - 1] = False
    assert (np.diff(t)[inside] >= 0).all()
    raw = pl.read_csv(shared_data / RSC.format("train_full"), separator="\t")
    assert set(info["item_ids"][train.items].tolist()) == set(raw["ItemId"].to_list())


def _independent_p1_pop(data_dir) -> tuple[float, float, int]:
    """MostPopular on P1 from the raw files: polars + numpy, no project code."""
    tr = pl.read_csv(data_dir / RSC.format("train_full"), separator="\t")
    te = pl.read_csv(data_dir / RSC.format("test"), separator="\t").with_row_index("row")
    pop = tr.group_by("ItemId").len()
    te = te.filter(pl.col("ItemId").is_in(pop["ItemId"].implode()))
    te = te.filter(pl.len().over("SessionId") >= 2).sort(["SessionId", "Time", "row"])
    te = te.join(pop, on="ItemId", how="left", maintain_order="left")
    same = te["SessionId"].to_numpy()[1:] == te["SessionId"].to_numpy()[:-1]
    target_pop = te["len"].to_numpy()[1:][same]
    counts = np.sort(pop["len"].to_numpy())
    rank = len(counts) - np.searchsorted(counts, target_pop, side="left")  # items with count >= target's
    return float((rank <= 20).mean()), float(np.where(rank <= 20, 1.0 / rank, 0.0).mean()), len(rank)


@pytest.mark.slow
def test_p1_most_popular_matches_independent_computation(shared_data):
    from tasks.tools.evaluate import run_evaluation

    hr, mrr, n = _independent_p1_pop(shared_data)
    res = run_evaluation("P1", "pop", shared_data, seed=0)
    assert res["n_predictions"] == n == 10_152
    assert res["metrics"]["HR@20"] == pytest.approx(hr, abs=1e-12)
    assert res["metrics"]["MRR@20"] == pytest.approx(mrr, abs=1e-12)
    assert round(res["metrics"]["HR@20"], 4) == 0.0894 and round(res["metrics"]["MRR@20"], 4) == 0.0264


def _independent_p2_pop(data_dir) -> tuple[float, float, int]:
    df = pl.read_csv(data_dir / "ml-100k/ml-100k.inter", separator="\t")
    df.columns = ["u", "i", "r", "ts"]
    df = df.sort(["u", "ts", "i"]).with_columns(pl.int_range(pl.len()).reverse().over("u").alias("from_end"))
    users = np.unique(df["u"].to_numpy())
    items = np.unique(df["i"].to_numpy())
    u = np.searchsorted(users, df["u"].to_numpy())
    i = np.searchsorted(items, df["i"].to_numpy())
    fe = df["from_end"].to_numpy()
    pop = np.bincount(i[fe >= 2], minlength=len(items)).astype(float)
    seen = np.zeros((len(users), len(items)), dtype=bool)
    seen[u[fe >= 1], i[fe >= 1]] = True
    target = np.empty(len(users), dtype=np.int64)
    target[u[fe == 0]] = i[fe == 0]
    assert not seen[np.arange(len(users)), target].any()
    rank = ((pop[None, :] >= pop[target][:, None]) & ~seen).sum(axis=1)  # counts the target itself once
    hit = rank <= 10
    return float(hit.mean()), float(np.where(hit, 1.0 / np.log2(rank + 1.0), 0.0).mean()), len(users)


def test_p2_split(shared_data):
    from tasks.tools.protocol_data import load_p2

    d = load_p2(shared_data)
    assert d.n_users == 943 and d.n_items == 1_682
    assert len(d.test.targets) == 943 and d.train.matrix.nnz == 100_000 - 2 * 943
    # targets are never in their own exclusion rows; test exclusion = train + valid item
    assert not d.test.exclude[np.arange(943), d.test.targets].any()
    assert not d.valid.exclude[np.arange(943), d.valid.targets].any()
    assert (d.test.exclude - d.train.matrix).nnz == 943
    assert (d.test.exclude - d.train.matrix)[np.arange(943), d.valid.targets].all()
    assert np.array_equal(d.full_sequences.lengths, d.train.sequences.lengths + 1)


@pytest.mark.slow
def test_p2_most_popular_matches_independent_computation(shared_data):
    from tasks.tools.evaluate import run_evaluation

    hr, ndcg, n = _independent_p2_pop(shared_data)
    res = run_evaluation("P2", "pop", shared_data, seed=0)
    assert res["n_predictions"] == n == 943
    assert res["metrics"]["HR@10"] == pytest.approx(hr, abs=1e-12)
    assert res["metrics"]["NDCG@10"] == pytest.approx(ndcg, abs=1e-12)
    assert round(res["metrics"]["HR@10"], 3) == 0.050 and round(res["metrics"]["NDCG@10"], 3) == 0.025


def test_tuning_split_scores_train_valid_and_is_refused_for_ml100k(shared_data):
    from tasks.tools.evaluate import run_evaluation
    from tasks.tools.protocol_data import load_p1_tuning

    _, tuning_valid, _ = load_p1_tuning(shared_data)
    res = run_evaluation("P3-rsc15", "itemknn", shared_data, tuning=True)
    assert "tuning" in res["dataset"]
    assert res["n_predictions"] == len(session_pairs(tuning_valid)[0]) != 10_152  # not the test pairs
    with pytest.raises(ValueError, match="--tuning is for the rsc15"):
        run_evaluation("P2", "pop", shared_data, tuning=True)


def test_p2_refit_of_a_baseline_fits_it_again_on_train_and_validation(shared_data):
    """EASE has no epochs: --refit fits it once more, same settings, on train + valid (what the night
    does), so a deep model's refit figure is compared with the baseline on the same interactions."""
    from recmodels.data import Interactions
    from recmodels.protocols import evaluate_users
    from recmodels.registry import create
    from tasks.tools.evaluate import run_evaluation
    from tasks.tools.protocol_data import load_p2

    data = load_p2(shared_data)
    ease = create("ease", config={"l2": 170.0})
    ease.fit(Interactions(matrix=data.test.history))  # the independent fit: train + valid interactions, nothing else
    hr_full = evaluate_users(ease, data.test, ks=(10,))["metrics"]["HR@10"]
    refit = run_evaluation("P2", "ease", shared_data, params={"l2": 170.0}, refit=True)
    plain = run_evaluation("P2", "ease", shared_data, params={"l2": 170.0})
    assert refit["metrics"]["HR@10"] == pytest.approx(hr_full, abs=1e-12)
    assert plain["metrics"]["HR@10"] != pytest.approx(hr_full, abs=1e-6)  # train only: another model


def test_profile_starts_from_the_nightly_settings_and_params_override_them(shared_data):
    from tasks.common.profiles import ProfileError
    from tasks.features.bundle import NightConfig
    from tasks.tools.evaluate import run_evaluation

    nightly = NightConfig.for_profile("sessionrec").models["multdae"]
    assert nightly["epochs"] != 1
    res = run_evaluation("P3-rsc15", "multdae", shared_data, tuning=True, profile="sessionrec", params={"epochs": 1})
    assert res["params"] == {**nightly, "epochs": 1} and res["profile"] == "sessionrec"
    assert res["fit"]["epochs"] == 1  # the override reached the model
    with pytest.raises(ProfileError, match="unknown source profile 'nosuch'"):
        run_evaluation("P2", "pop", shared_data, profile="nosuch")


def test_run_evaluation_rejects_mismatched_requests(shared_data):
    from tasks.tools.evaluate import run_evaluation

    with pytest.raises(ValueError, match="unknown protocol"):
        run_evaluation("P9", "pop", shared_data)
    with pytest.raises(ValueError, match="session model"):
        run_evaluation("P1", "ease", shared_data)
    with pytest.raises(ValueError, match="no P3 table"):
        run_evaluation("p3-RSC15", "vsknn", shared_data)  # names are case-insensitive (CLI upper-cases)


@pytest.mark.slow
def test_itemknn_p1_equals_its_p3_table(shared_data):
    """Item-kNN predicts from the last click's neighbour list, so P1 and P3-rsc15 must agree exactly."""
    from tasks.tools.evaluate import run_evaluation

    p1 = run_evaluation("P1", "itemknn", shared_data)
    p3 = run_evaluation("P3-rsc15", "itemknn", shared_data)
    assert p1["n_predictions"] == p3["n_predictions"] == 10_152
    assert p3["metrics"]["HR@20"] == pytest.approx(p1["metrics"]["HR@20"], abs=1e-12)
    assert p3["metrics"]["MRR@20"] == pytest.approx(p1["metrics"]["MRR@20"], abs=1e-12)
    assert p1["metrics"]["HR@20"] > 0.3  # and it is far from the popularity baseline (0.0894)
