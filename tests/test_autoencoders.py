"""Autoencoder user models (AutoRec, CDAE, Mult-DAE, Mult-VAE) and the shared user-training utilities."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recmodels.autoencoders import (
    CDAE,
    AutoRec,
    MultDAE,
    MultVAE,
    cdae_loss,
    gaussian_kl,
    masked_squared_error,
    multinomial_nll,
    multinomial_nll_sparse,
)
from recmodels.base import UserRecommender
from recmodels.checkpoint import CheckpointError
from recmodels.data import Interactions, UserTargets
from recmodels.metrics import target_ranks
from recmodels.similarity import cosine_topk
from recmodels.user_training import DeviceCSR, SparseInputLinear, evaluate_user_targets, topn_users

# --------------------------------------------------------------------------------------------------
# planted-cluster data (built here, so the expected behaviour does not come from the code under test)
# --------------------------------------------------------------------------------------------------


def planted(seed: int = 0, n_users: int = 300, n_items: int = 120, n_clusters: int = 4, per_user: int = 14):
    """Users and items in clusters; a user's items come from its cluster, drawn with popularity skew.

    Returns (train, valid, test, item_cluster). Per user the last drawn item is the test target, the one
    before it the validation target (like P2).
    """
    rng = np.random.default_rng(seed)
    ucl = rng.integers(0, n_clusters, n_users)
    icl = np.arange(n_items) % n_clusters
    rank_in_cluster = np.arange(n_items) // n_clusters
    logp = -0.7 * np.log1p(rank_in_cluster)  # Zipf-like popularity inside each cluster
    gumbel = -np.log(-np.log(rng.random((n_users, n_items))))
    keys = np.where(icl[None, :] == ucl[:, None], logp[None, :] + gumbel, -np.inf)
    chosen = np.argsort(-keys, axis=1)[:, :per_user]  # sampling without replacement (Gumbel top-k)
    n = per_user - 2
    users = np.repeat(np.arange(n_users), n)
    train = sp.csr_matrix((np.ones(len(users), np.float32), (users, chosen[:, :n].ravel())), shape=(n_users, n_items))
    full = train + sp.csr_matrix((np.ones(n_users, np.float32), (np.arange(n_users), chosen[:, n])), shape=train.shape)
    all_u = np.arange(n_users, dtype=np.int64)
    valid = UserTargets(all_u, chosen[:, n].astype(np.int64), train, train)
    test = UserTargets(all_u, chosen[:, n + 1].astype(np.int64), full.tocsr(), full.tocsr())
    return Interactions(train), valid, test, icl


def most_popular_hr10(train: Interactions, targets: UserTargets) -> float:
    counts = torch.as_tensor(np.asarray(train.matrix.sum(axis=0)).ravel(), dtype=torch.float32)
    scores = counts.expand(len(targets.users), -1).clone()
    ex = torch.as_tensor(targets.exclude.toarray() > 0)
    ranks = target_ranks(scores, torch.as_tensor(targets.targets), ex)
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


# --------------------------------------------------------------------------------------------------
# losses against direct formulas
# --------------------------------------------------------------------------------------------------


def test_multinomial_nll_matches_formula() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(3, 5))
    x = (rng.random((3, 5)) < 0.5).astype(np.float32)
    x[0, 0] = 2.0  # counts are allowed
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -np.mean((logp * x).sum(axis=1))
    got = multinomial_nll(torch.tensor(logits), torch.tensor(x))
    assert got.item() == pytest.approx(expected, rel=1e-6)
    rows, cols = np.nonzero(x)
    xs = DeviceCSR(sp.csr_matrix(x), torch.device("cpu")).sparse_rows(torch.arange(3))
    assert multinomial_nll_sparse(torch.tensor(logits), xs).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sparse_multinomial_nll_gradient_is_the_softmax_formula(dtype: torch.dtype) -> None:
    # d/dz of -(1/B) sum_u sum_i x_ui log softmax(z_u)_i = (n_u softmax(z_u) - x_u) / B, in numpy
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(4, 7)).astype(np.float32)
    x = (rng.random((4, 7)) < 0.4).astype(np.float32)
    x[1, 3] = 3.0
    x[2] = 0.0  # a user without entries contributes nothing
    soft = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = (x.sum(axis=1, keepdims=True) * soft - x) / 4
    z = torch.tensor(logits).to(dtype).requires_grad_(True)
    xs = DeviceCSR(sp.csr_matrix(x), torch.device("cpu")).sparse_rows(torch.arange(4))
    multinomial_nll_sparse(z, xs).backward()
    assert z.grad.dtype == dtype
    tol = 1e-6 if dtype == torch.float32 else 2e-2
    np.testing.assert_allclose(z.grad.float().numpy(), expected, atol=tol)


def test_gaussian_kl_matches_closed_form() -> None:
    mu = torch.tensor([[0.5, -1.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.2, -0.3], [0.0, 0.0]])
    var = logvar.exp().numpy()
    per_user = 0.5 * (var + mu.numpy() ** 2 - 1 - logvar.numpy()).sum(axis=1)
    assert gaussian_kl(mu, logvar).item() == pytest.approx(per_user.mean(), rel=1e-6)
    assert per_user[1] == 0.0  # standard normal: no divergence
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(2, 2), torch.ones(2, 2))
    ref = torch.distributions.kl_divergence(q, p).sum(1).mean()
    assert gaussian_kl(mu, logvar).item() == pytest.approx(ref.item(), rel=1e-5)


def test_cdae_loss_matches_formula() -> None:
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.0, -2.0]])
    x = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    s = 1 / (1 + np.exp(-logits.numpy()))
    ll = -(x.numpy() * np.log(s) + (1 - x.numpy()) * np.log(1 - s))
    expected = (ll * mask.numpy()).sum(axis=1).mean()
    assert cdae_loss(logits, x, mask).item() == pytest.approx(expected, rel=1e-6)


def test_cdae_rejects_the_logistic_loss_without_a_sigmoid_output(data) -> None:
    train, _, _, _ = data
    with pytest.raises(ValueError, match="logistic loss needs the sigmoid"):
        CDAE(config={"loss": "log", "output_act": "identity", "epochs": 1}, device="cpu").fit(train, None)
    with pytest.raises(ValueError, match="loss must be one of"):
        CDAE(config={"loss": "hinge", "epochs": 1}, device="cpu").fit(train, None)


def test_masked_squared_error_only_counts_masked_entries() -> None:
    pred = torch.tensor([[0.9, 0.4, 5.0], [0.1, 0.2, 0.3]])
    target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])  # entry (0, 2) is way off but unobserved
    expected = ((0.1**2 + 0.4**2) + (0.1**2 + 0.8**2)) / 2
    assert masked_squared_error(pred, target, mask).item() == pytest.approx(expected, rel=1e-6)


# --------------------------------------------------------------------------------------------------
# batching helpers
# --------------------------------------------------------------------------------------------------


def test_device_csr_rows_and_sparse_linear_match_dense() -> None:
    rng = np.random.default_rng(2)
    m = sp.random(50, 30, density=0.15, format="csr", random_state=3, dtype=np.float32)
    m = sp.csr_matrix(m.multiply(np.arange(50)[:, None] != 7))  # row 7 empty
    rows = np.array([7, 3, 3, 49, 0, 12])
    csr = DeviceCSR(m, torch.device("cpu"))
    dense = csr.dense_rows(torch.as_tensor(rows))
    np.testing.assert_array_equal(dense.numpy(), m[rows].toarray())
    narrow = csr.sparse_rows(torch.as_tensor(rows), n_cols=20).dense()
    np.testing.assert_array_equal(narrow.numpy(), m[rows].toarray()[:, :20])
    lin = SparseInputLinear(30, 4)
    x = csr.sparse_rows(torch.as_tensor(rows))
    ref = torch.as_tensor(m[rows].toarray()) @ lin.weight + lin.bias
    torch.testing.assert_close(lin(x), ref)
    norm = x.l2_normalized().dense().numpy()
    raw = m[rows].toarray()
    nz = raw.any(axis=1)
    np.testing.assert_allclose(norm[nz], raw[nz] / np.linalg.norm(raw[nz], axis=1, keepdims=True), rtol=1e-6)
    del rng


class _FixedScores(UserRecommender):
    """Scores from a fixed matrix (rows = users): brute force is then plain numpy."""

    name = "fixed"

    def __init__(self, scores: np.ndarray) -> None:
        super().__init__(device="cpu")
        self.s = torch.as_tensor(scores, dtype=torch.float32)
        self.n_items = scores.shape[1]

    def fit(self, train, valid=None):  # pragma: no cover - not trained
        raise AssertionError("a fixed-score test double is never trained")

    def score_users(self, users, history):
        return self.s[torch.as_tensor(users)]


def test_topn_users_matches_brute_force_and_excludes_seen() -> None:
    rng = np.random.default_rng(4)
    n_users, n_items = 37, 53
    scores = rng.permutation(n_users * n_items).reshape(n_users, n_items).astype(np.float64)  # no ties
    exclude = sp.random(n_users, n_items, density=0.2, format="csr", random_state=5)
    exclude.data[:] = 1
    model = _FixedScores(scores)
    users = rng.permutation(n_users)[:30]
    idx, val = topn_users(model, users, exclude[users], exclude[users], n=7, chunk=8)
    masked = np.where(exclude[users].toarray() > 0, -np.inf, scores[users])
    expected = np.argsort(-masked, axis=1)[:, :7]
    np.testing.assert_array_equal(idx.numpy(), expected)
    np.testing.assert_allclose(val.numpy(), np.take_along_axis(masked, expected, 1))
    assert not (exclude[users].toarray()[np.arange(30)[:, None], idx.numpy()] > 0).any()


def test_evaluate_user_targets_matches_brute_force_ranks() -> None:
    rng = np.random.default_rng(6)
    scores = rng.integers(0, 5, size=(40, 25)).astype(np.float64)  # many ties: conservative ranks
    exclude = sp.random(40, 25, density=0.2, format="csr", random_state=7)
    exclude.data[:] = 1
    targets = rng.integers(0, 25, 40)
    ut = UserTargets(np.arange(40), targets, exclude, exclude)
    res = evaluate_user_targets(_FixedScores(scores), ut, ks=(10,), chunk=9)
    ex = exclude.toarray() > 0
    ranks = []
    for u in range(40):  # brute force, one user at a time
        t = targets[u]
        others = [i for i in range(25) if i != t and not ex[u, i]]
        ranks.append(1 + sum(scores[u, i] >= scores[u, t] for i in others))
    ranks = np.array(ranks)
    assert res["HR@10"] == pytest.approx(np.mean(ranks <= 10))
    assert res["NDCG@10"] == pytest.approx(np.mean(np.where(ranks <= 10, 1 / np.log2(ranks + 1), 0)))
    assert res["n_predictions"] == 40


# --------------------------------------------------------------------------------------------------
# models beat MostPopular on planted clusters
# --------------------------------------------------------------------------------------------------

SHORT = {
    "multvae": (MultVAE, {"epochs": 40, "batch_size": 64, "total_anneal_steps": 200}),
    "multdae": (MultDAE, {"epochs": 40, "batch_size": 64}),
    "cdae": (CDAE, {"epochs": 40, "batch_size": 64, "hidden": 50}),
    "cdae-square-identity": (CDAE, {"epochs": 40, "batch_size": 64, "hidden": 50, "loss": "square",
                                    "hidden_act": "identity", "output_act": "identity"}),
    "cdae-square-sigmoid": (CDAE, {"epochs": 40, "batch_size": 64, "hidden": 50, "loss": "square"}),
    "i-autorec": (AutoRec, {"epochs": 40, "batch_size": 32, "hidden": 100}),
    "u-autorec": (AutoRec, {"epochs": 40, "batch_size": 64, "hidden": 100, "variant": "user"}),
}


@pytest.mark.parametrize("name", sorted(SHORT))
def test_model_beats_most_popular_on_planted_clusters(name: str, data) -> None:
    train, valid, test, _ = data
    cls, params = SHORT[name]
    model = cls(config=params, device="cpu", seed=0)
    report = model.fit(train, valid)
    hr = evaluate_user_targets(model, test, ks=(10,))["HR@10"]
    pop = most_popular_hr10(train, test)
    assert report.best_epoch >= 1 and report.train_events > 0
    assert hr > pop + 0.15, (name, hr, pop)


def test_vae_beta_anneals_to_cap_and_history_logs_it(data) -> None:
    train, _, _, _ = data
    cfg = {"epochs": 3, "batch_size": 100, "total_anneal_steps": 20, "anneal_cap": 0.2}
    model = MultVAE(config=cfg, device="cpu")
    report = model.fit(train, None)  # 300 users / 100 = 3 steps per epoch: beta = min(0.2, steps / 20)
    assert [row["beta"] for row in report.history] == pytest.approx([0.15, 0.2, 0.2])


@pytest.mark.parametrize("vectors", ["decoder", "encoder", "both", "latent"])
def test_item_vectors_put_same_cluster_items_together(vectors: str, data) -> None:
    train, _, _, icl = data
    model = MultDAE(config={"epochs": 40, "batch_size": 64, "item_vectors": vectors}, device="cpu", seed=0)
    model.fit(train, None)
    vec = model.item_vectors()
    assert vec.shape[0] == train.n_items
    idx, _ = cosine_topk(vec, k=5)
    same = (icl[idx.numpy()] == icl[:, None]).mean()
    assert same > 0.5  # chance is 1/4


def test_latent_item_vector_is_the_code_of_a_one_item_history(data) -> None:
    train, _, _, _ = data
    model = MultVAE(config={"epochs": 2, "batch_size": 64, "item_vectors": "latent"}, device="cpu", seed=0)
    model.fit(train, None)
    vec = model.item_vectors()
    assert vec.shape == (train.n_items, model.config.latent)
    item = 7
    one = DeviceCSR(sp.csr_matrix(([1.0], ([0], [item])), shape=(1, train.n_items)), torch.device("cpu"))
    with torch.no_grad():
        mu, _ = model.module.encode(one.sparse_rows(torch.arange(1)))
    torch.testing.assert_close(vec[item], mu[0])


def test_bf16_precision_trains_in_bf16_and_still_beats_most_popular(data) -> None:
    train, valid, test, _ = data
    model = MultVAE(config={**SHORT["multvae"][1], "precision": "bf16"}, device="cpu", seed=0)
    dtypes: list[torch.dtype] = []
    build = model._build

    def build_with_probe(n_users: int, n_items: int) -> torch.nn.Module:
        net = build(n_users, n_items)
        net.dec_out.register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype))
        return net

    model._build = build_with_probe
    model.fit(train, valid)
    assert torch.bfloat16 in dtypes  # the decoder's matmul ran in bf16 during training
    scores = model.score_users(np.arange(3), train.matrix[:3])
    assert scores.dtype == torch.float32  # final scores stay fp32 (bf16 would tie)
    hr = evaluate_user_targets(model, test, ks=(10,))["HR@10"]
    assert hr > most_popular_hr10(train, test) + 0.15


# --------------------------------------------------------------------------------------------------
# scoring semantics and checkpoints
# --------------------------------------------------------------------------------------------------


def test_i_autorec_folds_new_history_in_per_user(data) -> None:
    train, _, _, _ = data
    model = AutoRec(config={"epochs": 3, "hidden": 16}, device="cpu", seed=0)
    model.fit(train, None)
    users = np.array([3, 10])
    hist = train.matrix[users].tolil()
    hist[0, 5] = 1.0  # user 3 gains item 5; user 10 loses one training item
    hist[1, hist.rows[1][0]] = 0.0
    hist = hist.tocsr()
    hist.eliminate_zeros()
    got = model.score_users(users, hist)
    net = model.module
    with torch.no_grad():
        for b, u in enumerate(users):  # brute force: re-encode every item column with row u replaced
            r = train.matrix.toarray().T.copy()  # items x users
            r[:, u] = hist[b].toarray().ravel()
            codes = torch.sigmoid(torch.as_tensor(r) @ net.enc_in.weight + net.enc_in.bias)
            expected = codes @ net.dec_out.weight[u] + net.dec_out.bias[u]
            torch.testing.assert_close(got[b], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls", [MultVAE, CDAE, AutoRec])
def test_checkpoint_round_trip_into_grown_vocabulary(cls, data, tmp_path) -> None:
    train, _, test, _ = data
    model = cls(config={"epochs": 2, "batch_size": 64}, device="cpu", seed=3)
    model.fit(train, None)
    users = np.arange(20)
    before = model.score_users(users, test.history[users])
    model.save(tmp_path / "ck")
    grown = cls.load(tmp_path / "ck", n_items=train.n_items + 7, n_users=train.n_users + 4)
    assert grown.n_items == train.n_items + 7 and grown.n_users == train.n_users + 4
    hist = sp.hstack([test.history[users], sp.csr_matrix((20, 7))]).tocsr()
    after = grown.score_users(users, hist)
    assert after.shape == (20, train.n_items + 7)
    torch.testing.assert_close(after[:, : train.n_items], before, rtol=1e-5, atol=1e-5)
    assert torch.isfinite(after[:, train.n_items :]).all()
    # a new user (index beyond training) can be scored after growth
    assert grown.score_users(np.array([train.n_users + 3]), hist[:1]).shape == (1, train.n_items + 7)
    with pytest.raises(CheckpointError):
        cls.load(tmp_path / "ck", n_items=train.n_items - 1)
    (tmp_path / "ck" / "weights.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        cls.load(tmp_path / "ck")


@pytest.mark.slow
def test_multvae_on_ml100k_p2_beats_most_popular(shared_data) -> None:
    from tasks.tools.protocol_data import load_p2

    d = load_p2(shared_data)
    model = MultVAE(config={"epochs": 40, "patience": 10}, device="cpu", seed=0)
    model.fit(d.train, d.valid)
    res = evaluate_user_targets(model, d.test, ks=(10,))
    assert res["n_predictions"] == 943
    assert res["HR@10"] > most_popular_hr10(d.train, d.test) + 0.02
