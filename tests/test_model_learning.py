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


GRU_CFG = dict(layers=[64], batch_size=32, n_sample=64, epochs=6, lr=0.1, dropout_p_hidden=0.0)


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


NARM_CFG = dict(embedding=32, hidden=64, batch_size=128, epochs=6, lr=5e-3, dropout_ct=0.2)


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


def _textbook_step(W0, dense0, inputs, targets, samples, items, d, n, alpha, logq):  # noqa: ANN001, ANN202
    """The independent formula of one GRU4Rec step in float64, differentiated by autograd: returns the
    item table and dense parameters (with their .grad) and the loss."""
    B, S = len(inputs), len(samples)
    W = W0.clone().requires_grad_()  # [n, d + 1] = [item embedding | item bias]
    P = {k: v.clone().requires_grad_() for k, v in dense0.items()}
    x = W[torch.from_numpy(inputs), :d]
    gi = x @ P["w_ih.0"].T + P["b_ih.0"]
    gh = torch.zeros(B, d, dtype=torch.float64) @ P["w_hh.0"].T + P["b_hh.0"]  # new sessions: h0 = 0
    r = torch.sigmoid(gi[:, :d] + gh[:, :d])
    z = torch.sigmoid(gi[:, d : 2 * d] + gh[:, d : 2 * d])
    cand = torch.tanh(gi[:, 2 * d :] + r * gh[:, 2 * d :])
    h = (1 - z) * cand  # + z * h0
    cols = np.concatenate([targets, samples])
    counts = np.bincount(items, minlength=n).astype(np.float64)
    q_exp = np.concatenate([np.ones(B), np.full(S, alpha)])  # targets ~ pop, samples ~ pop^alpha
    correction = torch.from_numpy(-logq * q_exp * np.log(counts[cols]))
    logits = h @ W[torch.from_numpy(cols), :d].T + W[torch.from_numpy(cols), d] + correction  # [B, B + S]
    own = logits[torch.arange(B), torch.arange(B)]
    expected_loss = (torch.logsumexp(logits, 1) - own).sum() / B
    expected_loss.backward()
    return W, P, expected_loss


@pytest.mark.parametrize("manual", [True, False])
def test_one_gru4rec_step_matches_an_independent_sampled_softmax_with_logq(manual: bool, monkeypatch) -> None:
    """One training step: its loss and every gradient (output rows, item biases, input rows, GRU
    weights) against the textbook formula written here in float64 and differentiated by autograd:
    scores over the B in-batch target columns plus S shared sampled columns, each column's logit
    corrected by -logq * log Q(item) (targets ~ popularity, samples ~ popularity^alpha), cross-entropy
    on the own target column, summed over rows / B. Covers both backward paths of the code."""
    import recmodels.gru4rec as g4

    torch.set_num_threads(1)
    B, S, d, n, alpha, logq = 4, 5, 6, 12, 0.5, 1.0
    inputs, targets = np.array([0, 1, 2, 3]), np.array([4, 5, 6, 4])  # a duplicate target
    items = np.stack([inputs, targets], 1).reshape(-1)
    train = Sessions(items=items, offsets=np.arange(0, 2 * B + 1, 2), n_items=n, times=np.arange(2 * B).repeat(1))
    cfg = GRU4RecConfig(layers=[d], batch_size=B, n_sample=S, sample_alpha=alpha, logq=logq,
                        dropout_p_hidden=0.0, lr=0.1, momentum=0.0)  # fmt: skip
    model = GRU4Rec(cfg, device="cpu", seed=0)
    model._manual_backward = manual
    model.begin_fit(train, None)  # what the Trainer calls: fresh weights, the epoch's layout, the step state
    m = model.module
    W0 = m.table[:n].double().clone()
    dense0 = {k: v.detach().double().clone() for k, v in m.named_parameters()}

    drawn, row_grads, dense_grads = [], [], []
    real_sample, real_row, real_dense = g4.AliasSampler.sample, g4._RowOptimizer.step, g4._DenseOptimizer.step
    monkeypatch.setattr(g4.AliasSampler, "sample", lambda self, shape: drawn.append(real_sample(self, shape)) or drawn[-1])

    def row_step(self, uniq, st, g):  # noqa: ANN001
        row_grads.append((uniq.clone(), g.clone()))
        return real_row(self, uniq, st, g)

    def dense_step(self, grads=None):  # noqa: ANN001
        dense_grads.append([(p.grad if grads is None else grads[i]).clone() for i, p in enumerate(self.params)])
        return real_dense(self, grads)

    monkeypatch.setattr(g4._RowOptimizer, "step", row_step)
    monkeypatch.setattr(g4._DenseOptimizer, "step", dense_step)
    assert model._schedule.n_steps == 1
    assert model._steps.manual == manual  # the path under test is the one that runs
    blocks = list(model.train_batches())
    assert len(blocks) == 1
    step = model.train_step(blocks[0])  # the Trainer's step: the block's steps, loss kept on the device
    loss = float(step.loss_sum) / step.count
    assert len(row_grads) == 1 and len(dense_grads) == 1
    samples = drawn[0][0].numpy()

    W, P, expected_loss = _textbook_step(W0, dense0, inputs, targets, samples, items, d, n, alpha, logq)
    assert loss == pytest.approx(float(expected_loss.detach()), rel=1e-5)
    uniq, g = row_grads[0]
    real = uniq < n
    got = torch.zeros(n, d + 1, dtype=torch.float64).index_add_(0, uniq[real], g[real].double())
    torch.testing.assert_close(got, W.grad, rtol=1e-4, atol=1e-6)
    names = [k for k, _ in m.named_parameters()]
    for k, gk in zip(names, dense_grads[0], strict=True):
        torch.testing.assert_close(gk.double(), P[k].grad, rtol=1e-4, atol=1e-6, msg=k)
    assert float(W.grad[4:7].abs().sum()) > 0 and float(P["w_ih.0"].grad.abs().sum()) > 0  # not vacuous
