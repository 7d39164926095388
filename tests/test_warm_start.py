"""Warm start: a model's next fit begins from a checkpoint grown to the new vocabulary, or refuses it."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recmodels.checkpoint import CheckpointError
from recmodels.data import Interactions
from recmodels.registry import create
from tests.session_fixtures import planted_log

N_ITEMS, GROWN = 60, 65
# Learning rate 0: the warm-started fit cannot move the weights, so what it scores is what it loaded
# (GRU4Rec also without momentum: its warm start keeps the checkpoint's momentum, which would move them).
SESSION_CASES = {
    "gru4rec": ({"epochs": 1, "layers": [32], "batch_size": 16}, "lr"),
    "narm": ({"epochs": 1, "embedding": 16, "hidden": 16, "batch_size": 64}, "lr"),
}
FROZEN = {"gru4rec": {"momentum": 0.0}, "narm": {}}
USER_CASES = {
    "neumf": ({"epochs": 1, "gmf_dim": 8, "mlp_layers": [16, 8], "batch_size": 256}, "lr"),
    "multvae": ({"epochs": 1, "hidden": [32], "latent": 8}, "lr"),
    "multdae": ({"epochs": 1, "hidden": [32], "latent": 8}, "lr"),
}


def _matrix(n_users: int, n_items: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.1).astype(np.float32)
    dense[:, 0] = 1.0  # no empty rows
    return sp.csr_matrix(dense)


def _relative(scores: torch.Tensor) -> torch.Tensor:
    """Scores of the old items relative to each row's best: invariant to a per-row normalisation."""
    old = scores[:, :N_ITEMS].float()
    return old - old.max(dim=1, keepdim=True).values


def _grown_sessions(seed: int):
    s = planted_log(150, N_ITEMS, seed=seed)
    return type(s)(items=s.items, offsets=s.offsets, n_items=GROWN)


@pytest.mark.parametrize("name", sorted(SESSION_CASES))
def test_session_model_warm_start_continues_from_the_checkpoint(name, tmp_path) -> None:
    cfg, lr_key = SESSION_CASES[name]
    old = create(name, config=dict(cfg), device="cpu", seed=0)
    old.fit(planted_log(200, N_ITEMS, seed=1), None)
    old.save(tmp_path / "ckpt")
    probe = planted_log(20, N_ITEMS, seed=2)

    warm = create(name, config={**cfg, lr_key: 0.0, **FROZEN[name]}, device="cpu", seed=7)
    warm.fit(_grown_sessions(3), None, warm_from=tmp_path / "ckpt")
    assert warm.n_items == GROWN
    torch.testing.assert_close(_relative(warm.score_last(probe)), _relative(old.score_last(probe)), rtol=1e-4, atol=1e-4)

    cold = create(name, config={**cfg, lr_key: 0.0, **FROZEN[name]}, device="cpu", seed=7)
    cold.fit(_grown_sessions(3), None)
    assert not torch.allclose(_relative(cold.score_last(probe)), _relative(old.score_last(probe)), atol=1e-3)


@pytest.mark.parametrize("name", sorted(USER_CASES))
def test_user_model_warm_start_grows_users_and_items(name, tmp_path) -> None:
    cfg, lr_key = USER_CASES[name]
    train = _matrix(40, N_ITEMS, seed=1)
    old = create(name, config=dict(cfg), device="cpu", seed=0)
    old.fit(Interactions(train), None)
    old.save(tmp_path / "ckpt")

    grown = sp.vstack([sp.hstack([train, sp.csr_matrix((40, GROWN - N_ITEMS))]), _matrix(5, GROWN, seed=2)]).tocsr()
    warm = create(name, config={**cfg, lr_key: 0.0}, device="cpu", seed=7)
    warm.fit(Interactions(grown), None, warm_from=tmp_path / "ckpt")
    users = np.arange(40)
    history = grown[users]
    torch.testing.assert_close(_relative(warm.score_users(users, history)), _relative(old.score_users(users, train)),
                               rtol=1e-4, atol=1e-4)


def test_tampered_or_foreign_checkpoint_is_refused_in_fit(tmp_path) -> None:
    cfg, _ = USER_CASES["multvae"]
    model = create("multvae", config=dict(cfg), device="cpu", seed=0)
    model.fit(Interactions(_matrix(30, N_ITEMS, seed=1)), None)
    model.save(tmp_path / "ckpt")
    data = Interactions(_matrix(30, N_ITEMS, seed=2))

    wider = create("multvae", config={**cfg, "hidden": [48]}, device="cpu", seed=0)
    with pytest.raises(CheckpointError, match="cannot warm-start"):
        wider.fit(data, None, warm_from=tmp_path / "ckpt")

    weights = tmp_path / "ckpt" / "weights.pt"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    again = create("multvae", config=dict(cfg), device="cpu", seed=0)
    with pytest.raises(CheckpointError, match="weights.pt"):
        again.fit(data, None, warm_from=tmp_path / "ckpt")


def test_gru4rec_warm_start_keeps_the_adagrad_accumulators(tmp_path) -> None:
    """The checkpoint carries the optimiser state (loaded with weights_only=True) and a warm start
    continues from it: accumulators only grow, instead of restarting at zero (which makes each row's
    first update move by about the learning rate and undo part of the warm start)."""
    cfg, _ = SESSION_CASES["gru4rec"]
    old = create("gru4rec", config=dict(cfg), device="cpu", seed=0)
    old.fit(planted_log(200, N_ITEMS, seed=1), None)
    old.save(tmp_path / "ckpt")
    saved = torch.load(tmp_path / "ckpt" / "weights.pt", weights_only=True)
    acc_rows = saved["opt.W3"][:, 0]  # [items, d+1] Adagrad sums of squared gradients
    assert acc_rows.shape == (N_ITEMS, 33) and float(acc_rows.min()) >= 0 and float(acc_rows.max()) > 0
    dense_acc = {k: v for k, v in saved.items() if k.startswith("opt.acc.")}
    assert dense_acc and all(float(v.max()) > 0 for v in dense_acc.values())

    warm = create("gru4rec", config=dict(cfg), device="cpu", seed=7)
    warm.fit(_grown_sessions(3), None, warm_from=tmp_path / "ckpt")
    after = warm.state_dict()
    # Adagrad accumulators never shrink: kept from the checkpoint, then added to
    assert bool((after["opt.W3"][:N_ITEMS, 0] >= acc_rows - 1e-6).all())
    for k, v in dense_acc.items():
        assert bool((after[k] >= v - 1e-6).all()), k
    cold = create("gru4rec", config=dict(cfg), device="cpu", seed=7)
    cold.fit(_grown_sessions(3), None)
    # a cold fit of one epoch accumulates less than the warm one (the comparison is not vacuous)
    assert float(cold.state_dict()["opt.W3"][:N_ITEMS, 0].sum()) < float(after["opt.W3"][:N_ITEMS, 0].sum())
