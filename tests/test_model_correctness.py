"""Correctness fixes of the deep models, each tested so that the code before the fix fails:
zero-support items never recommended, float32 similarity and scores under bf16 autocast, NARM
scoring from its training window, NARM's softmax-normalised attention option."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recmodels.data import Sessions
from recmodels.gru4rec import GRU4Rec, GRU4RecConfig
from recmodels.narm import NARM, NARMConfig
from recmodels.similarity import cosine_topk
from recmodels.topk import session_topk
from tests.session_fixtures import planted_log

SMALL = dict(layers=[16], batch_size=16, n_sample=32, epochs=1, lr=0.1, dropout_p_hidden=0.0)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _with_vocab(s: Sessions, n_items: int) -> Sessions:
    return Sessions(items=s.items, offsets=s.offsets, n_items=n_items, times=s.times)


@pytest.mark.parametrize("n_sample", [32, 0])
def test_gru4rec_never_recommends_items_without_training_support(n_sample: int) -> None:
    """The night's vocabulary holds items first seen on the validation / test day: in training they are
    never a target nor a negative, their rows keep the random initialisation, so they score -inf."""
    train = _with_vocab(planted_log(300, 40, seed=1), 50)  # items 40..49: no training click at all
    # item 45 only opens sessions: an input, never a target; without sampled negatives it has no support
    extra = np.array([45, 3, 45, 7], dtype=np.int64)
    train = Sessions(items=np.concatenate([train.items, extra]),
                     offsets=np.concatenate([train.offsets, train.offsets[-1] + np.array([2, 4])]), n_items=50)  # fmt: skip
    model = GRU4Rec(GRU4RecConfig(**{**SMALL, "n_sample": n_sample}), device="cpu", seed=0)
    model.fit(train)
    probe = _with_vocab(planted_log(30, 40, seed=2), 50)
    sc = model.score_next(probe)
    unsupported = [i for i in range(40, 50) if i != 45] + ([] if n_sample else [45])
    assert torch.isneginf(sc[:, unsupported]).all()
    assert torch.isfinite(sc[:, :40]).all()
    idx, _ = session_topk(model, probe, k=20)
    assert not np.isin(idx, unsupported).any()
    if n_sample:  # with sampled negatives, item 45 (a possible negative: it has clicks) has support
        assert torch.isfinite(sc[:, 45]).all()


def test_gru4rec_support_survives_the_checkpoint_and_growth(tmp_path) -> None:
    train = _with_vocab(planted_log(200, 30, seed=3), 34)
    model = GRU4Rec(GRU4RecConfig(**SMALL), device="cpu", seed=0)
    model.fit(train)
    model.save(tmp_path / "ck")
    grown = GRU4Rec.load(tmp_path / "ck", n_items=40)
    sc = grown.score_next(_with_vocab(planted_log(10, 30, seed=4), 40))
    assert torch.isfinite(sc[:, :30]).all() and torch.isneginf(sc[:, 30:]).all()


def test_similarity_is_float32_under_bf16_autocast() -> None:
    """Clustered vectors: in bf16 most adjacent top-K scores tie. The similarity must run in fp32 even
    when the caller is under bf16 autocast (what CUDA gets by default)."""
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 32, generator=g)
    v = centers.repeat_interleave(50, 0) + 0.01 * torch.randn(200, 32, generator=g)
    ref_idx, ref_val = cosine_topk(v.double(), k=20)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        idx, val = cosine_topk(v, k=20)
    assert val.dtype == torch.float32
    torch.testing.assert_close(val.double(), ref_val.double(), rtol=0, atol=1e-5)
    ties = (val[:, 1:] == val[:, :-1]).float().mean()
    assert float(ties) < 0.1  # bf16 ties most of them


def test_gru4rec_scores_are_float32_under_bf16_autocast() -> None:
    """Inference runs the GRU and the final scores in fp32 whatever autocast the caller is under."""
    train = planted_log(200, 30, seed=5)
    model = GRU4Rec(GRU4RecConfig(**SMALL), device="cpu", seed=0)
    model.fit(train)
    probe = planted_log(20, 30, seed=6)
    ref = model.score_next(probe)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = model.score_next(probe)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)


NARM_SMALL = dict(embedding=16, hidden=16, batch_size=64, epochs=1)


def test_narm_scores_long_prefixes_from_its_training_window() -> None:
    """``max_len`` = W: training never sees more than W clicks, so a longer prefix is scored from its
    last W clicks (the encoder restarted there), exactly as a session made of those W clicks."""
    W = 4
    model = NARM(NARMConfig(**NARM_SMALL, max_len=W), device="cpu", seed=0)
    model.fit(planted_log(200, 30, seed=7))
    rng = np.random.default_rng(0)
    long = rng.integers(0, 30, 11)
    s = Sessions(items=np.concatenate([long, [1, 2]]), offsets=np.array([0, 11, 13]), n_items=30)
    sc = model.score_next(s)
    for t in range(11):
        lo = max(0, t + 1 - W)
        one = Sessions(items=long[lo : t + 1], offsets=np.array([0, t + 1 - lo]), n_items=30)
        torch.testing.assert_close(sc[t], model.score_next(one)[-1], rtol=1e-5, atol=1e-5)
    # without a window, the whole prefix is read (the same long prefix scores differently)
    free = NARM(NARMConfig(**NARM_SMALL), device="cpu", seed=0)
    free.module, free.n_items = model.module, model.n_items
    assert not torch.allclose(free.score_next(s)[10], sc[10], atol=1e-4)


def test_narm_softmax_attention_is_normalised_over_the_prefix() -> None:
    """``attention="softmax"`` (the authors' code): alpha_t = softmax_j<=t(v^T sigmoid(A1 h_t + A2 h_j)),
    so the local vector is a convex combination of the prefix's states and does not grow with length."""
    model = NARM(NARMConfig(**NARM_SMALL, attention="softmax"), device="cpu", seed=0)
    model._build(30)
    m = model.module.eval()
    x = torch.randint(0, 30, (3, 9), generator=torch.Generator().manual_seed(1))
    known = torch.ones_like(x, dtype=torch.bool)
    with torch.no_grad():
        c = m.encode(x, known, False)
        hs, _ = m.gru(m.emb(x))
        H = hs.shape[-1]
        for t in range(9):
            e = torch.stack([m.v(torch.sigmoid(m.A1(hs[:, t]) + m.A2(hs[:, j])))[:, 0] for j in range(t + 1)], 1)
            alpha = torch.exp(e) / torch.exp(e).sum(1, keepdim=True)
            ref = (alpha[:, :, None] * hs[:, : t + 1]).sum(1)
            torch.testing.assert_close(c[:, t, H:], ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="attention"):
        NARMConfig(attention="dot")
