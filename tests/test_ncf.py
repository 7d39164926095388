"""NCF (GMF, MLP, NeuMF): losses, negative sampling, full-ranking scoring, pre-training, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recmodels.checkpoint import CheckpointError
from recmodels.data import Interactions, UserTargets
from recmodels.metrics import target_ranks
from recmodels.ncf import GMF, MLP, NCFConfig, NeuMF
from recmodels.user_training import (
    DeviceCSR,
    PositiveSet,
    evaluate_user_targets,
    sample_negatives,
    topn_users,
)


def planted(seed: int = 0, n_users: int = 300, n_items: int = 120, n_clusters: int = 4, per_user: int = 14):
    """Users and items in clusters; a user's items come from its cluster with popularity skew (P2-like split)."""
    rng = np.random.default_rng(seed)
    ucl = rng.integers(0, n_clusters, n_users)
    icl = np.arange(n_items) % n_clusters
    logp = -0.7 * np.log1p(np.arange(n_items) // n_clusters)
    gumbel = -np.log(-np.log(rng.random((n_users, n_items))))
    keys = np.where(icl[None, :] == ucl[:, None], logp[None, :] + gumbel, -np.inf)
    chosen = np.argsort(-keys, axis=1)[:, :per_user]  # Gumbel top-k = sampling without replacement
    n = per_user - 2
    users = np.repeat(np.arange(n_users), n)
    train = sp.csr_matrix((np.ones(len(users), np.float32), (users, chosen[:, :n].ravel())), shape=(n_users, n_items))
    full = (train + sp.csr_matrix((np.ones(n_users, np.float32), (np.arange(n_users), chosen[:, n])), shape=train.shape)).tocsr()
    all_u = np.arange(n_users, dtype=np.int64)
    valid = UserTargets(all_u, chosen[:, n].astype(np.int64), train, train)
    test = UserTargets(all_u, chosen[:, n + 1].astype(np.int64), full, full)
    return Interactions(train), valid, test


def most_popular_hr10(train: Interactions, targets: UserTargets) -> float:
    counts = torch.as_tensor(np.asarray(train.matrix.sum(axis=0)).ravel(), dtype=torch.float32)
    ranks = target_ranks(
        counts.expand(len(targets.users), -1).clone(),
        torch.as_tensor(targets.targets),
        torch.as_tensor(targets.exclude.toarray() > 0),
    )
    return float((ranks <= 10).double().mean())


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one intra-op thread (on a shared, loaded runner, OpenMP spin-waits dominate)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    return planted()


def _spread(model: GMF) -> None:
    """Weights far from the N(0, 0.01) start, where every logit is ~0 and any loss reads log 2."""
    with torch.no_grad():
        for p in model.module.parameters():
            p.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(p.numel()))


def test_training_losses_match_formulas(data) -> None:
    """The loss training runs (``_loss`` on a batch of the epoch) against eq. 7 and BPR written here."""
    train, _, _ = data
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    log_model = GMF(config={"gmf_dim": 4}, device="cpu", seed=0)
    log_model.begin_fit(train, None)
    _spread(log_model)
    u, i, y = next(iter(log_model.train_batches()))
    with torch.no_grad():
        p = sig(log_model.module(u, i).double().numpy())
        got = log_model._loss((u, i, y)).item()
    y = y.numpy()
    expected = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()  # eq. 7 over positives and negatives
    assert 0 < y.mean() < 1 and got == pytest.approx(expected, rel=1e-5)

    bpr_model = GMF(config={"gmf_dim": 4, "loss": "bpr"}, device="cpu", seed=0)
    bpr_model.begin_fit(train, None)
    _spread(bpr_model)
    u, i, j = next(iter(bpr_model.train_batches()))
    with torch.no_grad():
        diff = (bpr_model.module(u, i) - bpr_model.module(u, j)).double().numpy()
        got = bpr_model._loss((u, i, j)).item()
    assert got == pytest.approx(-np.mean(np.log(sig(diff))), rel=1e-5)


@pytest.mark.parametrize("bitmap", [True, False])
def test_negative_sampling_avoids_positives_and_is_reproducible(bitmap: bool, monkeypatch) -> None:
    if not bitmap:
        monkeypatch.setattr(PositiveSet, "BITMAP_LIMIT", 0)  # force the sorted-keys path
    m = sp.random(40, 30, density=0.6, format="csr", random_state=1, dtype=np.float32)  # dense rows
    pos = PositiveSet(DeviceCSR(m, torch.device("cpu")))
    assert (pos.bitmap is not None) == bitmap
    users = torch.arange(40).repeat(50)
    neg = sample_negatives(users, 30, pos, torch.Generator().manual_seed(3))
    dense = m.toarray() > 0
    assert not dense[users.numpy(), neg.numpy()].any()
    assert (neg >= 0).all() and (neg < 30).all()
    # every unobserved item of a user is reachable (uniform over the complement, not a fixed subset)
    seen = np.zeros_like(dense)
    seen[users.numpy(), neg.numpy()] = True
    assert seen.sum() > 0.9 * (~dense).sum()
    again = sample_negatives(users, 30, pos, torch.Generator().manual_seed(3))
    assert torch.equal(neg, again)


@pytest.mark.parametrize("cls", [GMF, MLP, NeuMF])
def test_full_ranking_scores_equal_pairwise_forward(cls, data) -> None:
    train, _, _ = data
    model = cls(config={"epochs": 1, "gmf_dim": 8, "mlp_layers": (16, 8, 4)}, device="cpu", seed=0)
    model.fit(train, None)
    users = np.array([0, 5, 299])
    scores = model.score_users(users, train.matrix[users])
    u = torch.as_tensor(users).repeat_interleave(train.n_items)
    i = torch.arange(train.n_items).repeat(len(users))
    with torch.no_grad():
        pair = model.module(u, i).reshape(len(users), -1)
    torch.testing.assert_close(scores, pair, rtol=1e-5, atol=1e-5)


SHORT = {
    "gmf": (GMF, {}),
    "mlp": (MLP, {"lr": 5e-3}),
    "neumf": (NeuMF, {}),
    "neumf-bpr": (NeuMF, {"loss": "bpr"}),
    "neumf-pretrain": (NeuMF, {"pretrain": True, "epochs": 10, "finetune_epochs": 3}),
}


@pytest.mark.parametrize("name", sorted(SHORT))
def test_model_beats_most_popular_on_planted_clusters(name: str, data) -> None:
    train, valid, test = data
    cls, params = SHORT[name]
    cfg = {"epochs": 15, "batch_size": 512, "gmf_dim": 16, "mlp_layers": (32, 16, 8), **params}
    model = cls(config=cfg, device="cpu", seed=0)
    model.fit(train, valid)
    hr = evaluate_user_targets(model, test, ks=(10,))["HR@10"]
    pop = most_popular_hr10(train, test)
    assert hr > pop + 0.15, (name, hr, pop)


def test_neumf_pretrained_init_mixes_gmf_and_mlp_with_alpha(data) -> None:
    train, _, _ = data
    cfg = NCFConfig(epochs=1, gmf_dim=8, mlp_layers=(16, 8), alpha=0.3)
    gmf, mlp = GMF(cfg, "cpu", 0), MLP(cfg, "cpu", 1)
    gmf.fit(train, None)
    mlp.fit(train, None)
    neu = NeuMF(cfg, "cpu", 2)
    neu.n_users, neu.n_items = train.matrix.shape
    neu.module = neu._build(neu.n_users, neu.n_items)
    neu._init_from(gmf.module, mlp.module, 0.3)
    u, i = torch.tensor([0, 1, 2, 3]), torch.tensor([5, 6, 7, 8])
    with torch.no_grad():
        expected = 0.3 * gmf.module(u, i) + 0.7 * mlp.module(u, i)
        torch.testing.assert_close(neu.module(u, i), expected, rtol=1e-5, atol=1e-6)


def test_topn_excludes_seen_items(data) -> None:
    train, _, test = data
    model = GMF(config={"epochs": 2, "batch_size": 512}, device="cpu", seed=0)
    model.fit(train, None)
    users = np.arange(50)
    idx, val = topn_users(model, users, test.history[users], test.exclude[users], n=10, chunk=16)
    seen = test.exclude[users].toarray() > 0
    assert not seen[np.arange(50)[:, None], idx.numpy()].any()
    assert (val[:, :-1] >= val[:, 1:]).all()
    full = model.score_users(users, test.history[users]).numpy()
    full[seen] = -np.inf
    np.testing.assert_array_equal(np.sort(idx.numpy(), 1), np.sort(np.argsort(-full, 1)[:, :10], 1))


def test_checkpoint_round_trip_into_grown_vocabulary(data, tmp_path) -> None:
    train, _, test = data
    model = NeuMF(config={"epochs": 2, "batch_size": 512, "mlp_layers": (16, 8)}, device="cpu", seed=4)
    model.fit(train, None)
    users = np.arange(30)
    before = model.score_users(users, test.history[users])
    model.save(tmp_path / "neumf")
    grown = NeuMF.load(tmp_path / "neumf", n_items=train.n_items + 5, n_users=train.n_users + 2)
    after = grown.score_users(users, test.history[users])
    assert after.shape == (30, train.n_items + 5)
    torch.testing.assert_close(after[:, : train.n_items], before, rtol=1e-5, atol=1e-6)
    new_user = grown.score_users(np.array([train.n_users + 1]), test.history[:1])
    assert torch.isfinite(new_user).all()
    with pytest.raises(ValueError):
        model.score_users(np.array([train.n_users]), test.history[:1])  # unknown user before growth
    with pytest.raises(CheckpointError):
        GMF.load(tmp_path / "neumf")  # a NeuMF checkpoint is not a GMF one


@pytest.mark.slow
def test_neumf_on_ml100k_p2_beats_most_popular(shared_data) -> None:
    from tasks.tools.protocol_data import load_p2

    d = load_p2(shared_data)
    model = NeuMF(config={"epochs": 30}, device="cpu", seed=0)
    model.fit(d.train, d.valid)
    res = evaluate_user_targets(model, d.test, ks=(10,))
    assert res["n_predictions"] == 943
    assert res["HR@10"] > most_popular_hr10(d.train, d.test) + 0.015


def test_refit_takes_the_best_epoch_count_and_turns_early_stopping_off() -> None:
    from recmodels.base import TrainedModel
    from recmodels.registry import create

    model = GMF(config={"epochs": 60, "patience": 8}, device="cpu")
    assert isinstance(model, TrainedModel) and not isinstance(create("ease"), TrainedModel)  # baselines: one pass
    assert model.refit_params({"lr": 0.01}, best_epoch=17) == {"lr": 0.01, "epochs": 17, "patience": None}
    assert model.refit_params({"lr": 0.01}, best_epoch=0) is None  # no epoch was ever validated


def test_peer_bench_refuses_other_models_and_says_when_recbole_is_missing(tmp_path) -> None:
    from tasks.tools.bench_peer import peer_epoch_seconds, recbole_available

    with pytest.raises(ValueError, match="compares"):
        peer_epoch_seconds("gru4rec", tmp_path)
    if recbole_available():
        pytest.skip("RecBole is installed here: the missing-library message cannot be seen")
    with pytest.raises(ValueError, match="RecBole is not installed"):
        peer_epoch_seconds("neumf", tmp_path)


def test_bench_epoch_at_peak_is_the_epochs_matmul_flops_over_the_peak() -> None:
    from tasks.tools.bench_user_train import _bench_one, synthetic_interactions

    torch.set_num_threads(1)
    train = synthetic_interactions(300, 120, seed=0)
    params = {"mlp_layers": [8, 4], "num_neg": 2, "batch_size": 64}
    r = _bench_one("mlp", train, 1, torch.device("cpu"), 10.0, None, 50, 5, params)
    assert r["samples_per_epoch"] == train.matrix.nnz * (1 + 2) == r["train_samples"]
    # the tower's one layer (8 -> 4, split into user and item halves): 2*8*4 FLOPs per sample
    # forward, twice that backward (input and weight gradients); 10 GFLOP/s is the given peak
    flops_epoch = 3 * 2 * 8 * 4 * r["samples_per_epoch"]
    assert r["epoch_seconds_at_peak"] == pytest.approx(flops_epoch / 10e9)


def test_relu_dropout_multiplier_keeps_the_stated_share() -> None:
    from recmodels.ncf import relu_dropout_multiplier

    torch.manual_seed(0)
    z = torch.rand(1000, 1000) - 0.2  # 80% positive
    m = relu_dropout_multiplier(z, 0.25)
    values = torch.unique(m).tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / 0.75)
    assert not m[z <= 0].any()
    kept = (m[z > 0] > 0).float().mean().item()
    assert kept == pytest.approx(0.75, abs=0.003)  # 800k draws: standard error ~0.0005
    assert torch.equal(relu_dropout_multiplier(z, 0.0), (z > 0).float())


TINY_PRE = {"gmf_dim": 8, "mlp_layers": [16, 8], "batch_size": 512, "pretrain": True, "eval_every": 1}


def test_neumf_pretraining_honours_warm_start(tmp_path) -> None:
    """A warm-started NeuMF with pre-training continues from the checkpoint (no GMF / MLP pre-training
    from scratch); with learning rate 0 it scores exactly what it loaded."""
    train, _, _ = planted(seed=5, n_users=80, n_items=40)
    old = NeuMF(config={**TINY_PRE, "epochs": 2, "finetune_epochs": 1}, device="cpu", seed=0)
    old.fit(train, None)
    old.save(tmp_path / "ck")
    warm = NeuMF(config={**TINY_PRE, "epochs": 2, "finetune_epochs": 1, "lr": 0.0, "finetune_lr": 0.0},
                 device="cpu", seed=3)
    rep = warm.fit(train, None, warm_from=tmp_path / "ck")
    assert not any("phase_gmf" in r or "phase_mlp" in r for r in rep.history)  # no pre-training ran
    users = np.arange(80)
    torch.testing.assert_close(warm.score_users(users, train.matrix), old.score_users(users, train.matrix))


def test_neumf_refit_puts_the_fine_tune_epoch_into_the_fine_tune_budget() -> None:
    """The nightly refit after early stopping: the fine-tuning phase's best epoch is the fine-tuning
    budget, and the pre-training budget is the pre-training's own best epoch count."""
    from tasks.train.fit import _fit_once

    train, valid, _ = planted(seed=6, n_users=120, n_items=48)
    params = {**TINY_PRE, "epochs": 7, "patience": 2, "finetune_epochs": 6}
    final, rep = _fit_once("neumf", params, "cpu", 0, train, train, valid, True, True, None)
    pre_best = max(int(r["epoch"]) for r in rep.history if "phase_gmf" in r or "phase_mlp" in r)
    # the refit ran without validation: its report holds the refit's own phases
    assert final.config.finetune_epochs == rep.best_epoch < 6
    assert 1 <= final.config.epochs <= 7 and final.config.patience is None
    assert final.config.epochs <= pre_best
