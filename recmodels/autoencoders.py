"""Autoencoder user models: AutoRec, CDAE, Mult-DAE, Mult-VAE (pure PyTorch).

Mult-VAE / Mult-DAE — Liang, Krishnan, Hoffman, Jebara, "Variational Autoencoders for Collaborative
Filtering", WWW 2018. Implemented: multinomial log-likelihood over the softmax of all items; L2
normalisation of the binary input followed by dropout (p=0.5) as the corruption; the
[I -> 600 -> 200 -> 600 -> I] architecture with tanh (Mult-DAE: tanh on every hidden layer incl.
the code, as the authors' code); Gaussian encoder with reparameterisation and KL term annealed
linearly from 0 to ``anneal_cap`` (0.2) over ``total_anneal_steps`` gradient steps; the model of the
best validation epoch (NDCG@100, the paper's selection metric) is kept, which is the "best beta"
model of the paper (the paper's optional retraining with that beta fixed is left out); Xavier
weights, N(0, 0.001) biases; Adam; L2 on weights (``l2``: the authors' lam, 0 for the VAE,
0.01/batch for the DAE). Scoring uses the mean code (no sampling, no dropout). Left out: the
paper's "Mult-VAE^PR" partial-regularisation naming is what this is; no Gaussian / logistic
likelihood variants.

CDAE — Wu, DuBois, Zheng, Ester, "Collaborative Denoising Auto-Encoders for Top-N Recommender
Systems", WSDM 2016. Implemented: one hidden layer with a per-user input node V_u added to the
encoded corrupted input, sigmoid hidden and output (logistic loss), drop-out corruption of the
input with rescaling 1/(1-q), negative sampling of the zero entries (``num_neg`` x #observed items
per user, drawn afresh each step), L2 on all weights and the batch's user nodes, and the paper's
variants: sigmoid or identity hidden / output mappings with the logistic or the squared loss
(``loss``, ``hidden_act``, ``output_act``; default sigmoid / sigmoid / logistic). Scores are the
output pre-activations (the same order as the outputs: both mappings are monotone). Left out: the
paper's pairwise losses and AdaGrad (Adam here).

AutoRec — Sedhain, Menon, Sanner, Xie, "AutoRec: Autoencoders Meet Collaborative Filtering", WWW
2015. Implemented: I-AutoRec (an item's column of the user x item matrix is one sample; default)
and U-AutoRec (``variant="user"``); sigmoid encoder, identity decoder, squared loss on *observed
entries only*, L2 weight decay lambda/2 (||W||^2 + ||V||^2); 500 hidden units. Left out: the
paper's rating-prediction protocol (RMSE on explicit ratings; nothing here predicts ratings).
Adaptation to implicit top-N: the matrix is binary, so "observed only" would fit the constant 1;
the loss is taken over the observed entries plus ``num_neg`` uniformly sampled zeros per observed
entry (redrawn every step; ``num_neg=0`` gives the full dense loss). Scoring of I-AutoRec: the
score of (u, i) is entry u of item i's reconstruction; a history that differs from the training
matrix (e.g. the validation item at test time) is folded in exactly, per user, by correcting the
item codes of the changed entries (so each user is scored as if only their row had changed).
Left out: L-BFGS / RProp optimisers (Adam here).

Item similarity: ``item_vectors()`` returns the decoder's item weights (Mult-VAE / Mult-DAE / CDAE,
U-AutoRec) or the encoder's item codes (I-AutoRec), for ``recmodels.similarity.cosine_topk``.
Mult-VAE / Mult-DAE can also give the encoder's input rows, both side by side, or the latent code
of each item alone (``item_vectors``); ``clickrec evaluate --protocol P3-ml100k`` reports the
choice's figure on validation pairs (last train item -> validation item), which is what picks it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from recmodels.data import Interactions
from recmodels.user_training import DeviceCSR, SparseInputLinear, SparseRows, TorchUserModel, fp32_linear

# --------------------------------------------------------------------------------------------------
# losses (module-level so tests can check them against direct formulas)
# --------------------------------------------------------------------------------------------------


def multinomial_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-mean_u sum_i x_ui log softmax(logits_u)_i  (Liang et al. eq. 2, per user)."""
    return -(F.log_softmax(logits.float(), dim=1) * x).sum(dim=1).mean()


class _SparseMultinomialNLL(torch.autograd.Function):
    """-(1/B) sum_u sum_i x_ui log softmax(z_u)_i over the stored entries of x.

    Written out because the gradient has a closed form, (n_u softmax(z_u) - x_u) / B with
    n_u = sum_i x_ui: the backward is one exp of the saved log-probabilities plus a sparse scatter,
    where autograd would materialise a dense gather gradient and run log_softmax's backward too.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, n_rows: int):
        logp = F.log_softmax(logits.float(), dim=1)
        vals = vals.float()
        ctx.save_for_backward(logp, rows, cols, vals)
        ctx.in_dtype = logits.dtype
        return -(logp[rows, cols] * vals).sum() / max(n_rows, 1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        logp, rows, cols, vals = ctx.saved_tensors
        n = torch.zeros(logp.shape[0], device=logp.device).index_add_(0, rows, vals)
        dz = torch.exp(logp).mul_(n[:, None])
        dz.index_put_((rows, cols), -vals, accumulate=True)
        return dz.mul_(grad / max(logp.shape[0], 1)).to(ctx.in_dtype), None, None, None, None


def multinomial_nll_sparse(logits: torch.Tensor, x: SparseRows) -> torch.Tensor:
    """``multinomial_nll`` with the counts given sparsely (stored entries only), same value and gradient."""
    return _SparseMultinomialNLL.apply(logits, x.rows, x.cols, x.vals, x.n_rows)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over latent dims, mean over users."""
    mu, logvar = mu.float(), logvar.float()
    return (0.5 * (-logvar + logvar.exp() + mu.pow(2) - 1.0)).sum(dim=1).mean()


def cdae_loss(logits: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Logistic loss over the entries in ``mask`` (observed + sampled zeros), summed per user, mean over users."""
    ll = F.binary_cross_entropy_with_logits(logits.float(), x, reduction="none")
    return (ll * mask).sum(dim=1).mean()


def masked_squared_error(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """AutoRec's sum over observed (masked) entries of (r - h(r))^2, mean over samples."""
    return ((pred.float() - target) ** 2 * mask).sum(dim=1).mean()


def _init_linear(layer: nn.Linear) -> None:
    nn.init.xavier_uniform_(layer.weight)
    nn.init.normal_(layer.bias, std=0.001)


# --------------------------------------------------------------------------------------------------
# Mult-DAE / Mult-VAE
# --------------------------------------------------------------------------------------------------


class _MultNet(nn.Module):
    def __init__(self, n_items: int, hidden: tuple[int, ...], latent: int, dropout: float, variational: bool) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("Mult-VAE/DAE need at least one hidden layer (paper: 600)")
        self.variational, self.latent, self.dropout = variational, latent, dropout
        self.enc_in = SparseInputLinear(n_items, hidden[0])  # sparse input: cost nnz x 600
        self.enc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(hidden[:-1], hidden[1:], strict=True))
        self.enc_out = nn.Linear(hidden[-1], latent * (2 if variational else 1))
        dec_dims = [latent, *reversed(hidden)]
        self.dec = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dec_dims[:-1], dec_dims[1:], strict=True))
        self.dec_out = nn.Linear(dec_dims[-1], n_items)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                _init_linear(m)

    def encode(self, x: SparseRows) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = x.l2_normalized()
        # dropout of the normalised input = dropping stored entries (zeros stay zero), rescaled 1/(1-p)
        h = torch.tanh(self.enc_in(x.with_vals(F.dropout(x.vals, self.dropout, self.training))))
        for layer in self.enc:
            h = torch.tanh(layer(h))
        h = self.enc_out(h)
        if self.variational:
            return h[:, : self.latent], h[:, self.latent :]
        return torch.tanh(h), None  # the authors' DAE applies tanh to the code too

    def decode_hidden(self, z: torch.Tensor) -> torch.Tensor:
        for layer in self.dec:
            z = torch.tanh(layer(z))
        return z

    def forward(self, x: SparseRows) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        mu, logvar = self.encode(x)
        z = mu
        if self.variational and self.training:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.dec_out(self.decode_hidden(z)), mu, logvar

    def weight_sq(self) -> torch.Tensor:
        return sum(m.weight.pow(2).sum() for m in self.modules() if isinstance(m, (nn.Linear, SparseInputLinear)))


@dataclass
class MultVAEConfig:
    hidden: tuple[int, ...] = (600,)
    latent: int = 200
    dropout: float = 0.5
    anneal_cap: float = 0.2
    total_anneal_steps: int = 20_000
    l2: float = 0.0  # the authors' lam (loss += l2 * sum W^2); 0 for Mult-VAE in their experiments
    lr: float = 1e-3
    batch_size: int = 128
    epochs: int = 200
    patience: int | None = 20  # evaluations without a new best before stopping; None: no early stopping
    eval_every: int = 1
    # the paper's model-selection metric; with one held-out item per user it is also a smoother
    # early-stopping signal than NDCG@10 (a target ranked 11th-100th still counts)
    valid_metric: str = "NDCG@100"
    weight_decay: float = 0.0
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16: recmodels.device.autocast
    # Item vectors for the similarity table: the decoder's output rows ("decoder"), the encoder's
    # input rows ("encoder"), both, each L2-normalised, side by side ("both"), or the mean latent code
    # of the item alone as a one-item history ("latent").
    # chosen per data set without the test: "decoder" on rsc15's tuning split (clickrec evaluate
    # --protocol P3-rsc15 --tuning), "both" on ml-100k's validation pairs (the movielens profile)
    item_vectors: str = "decoder"


@dataclass
class MultDAEConfig(MultVAEConfig):
    dropout: float = 0.3  # tuned on P2 (0.5 in the paper: 0.086 vs 0.093 HR@10, seed 0)
    anneal_cap: float = 0.0
    l2: float = 0.01 / 500  # the authors' lam / batch size


class MultVAE(TorchUserModel):
    """Mult-VAE^PR (Liang et al. 2018): multinomial likelihood, annealed KL, best-beta epoch kept."""

    name = "multvae"
    config_cls = MultVAEConfig
    variational = True
    item_row_keys = ("dec_out.weight", "dec_out.bias")
    item_input_keys = ("enc_in.weight",)

    def _build(self, n_users: int, n_items: int) -> nn.Module:
        c = self.config
        self._steps = 0
        return _MultNet(n_items, tuple(c.hidden), c.latent, c.dropout, self.variational)

    def _prepare(self, train: Interactions) -> None:
        assert self._train is not None
        self._active = torch.nonzero(self._train.row_lengths() > 0).squeeze(1)  # users with a history

    def _epoch_batches(self, generator: torch.Generator) -> Iterator[tuple[torch.Tensor]]:
        perm = self._active[torch.randperm(len(self._active), generator=generator).to(self.device)]
        for start in range(0, len(perm), self.config.batch_size):
            yield (perm[start : start + self.config.batch_size],)

    def beta(self) -> float:
        c = self.config
        if not self.variational:
            return 0.0
        if c.total_anneal_steps <= 0:
            return c.anneal_cap
        return min(c.anneal_cap, self._steps / c.total_anneal_steps)

    def _loss(self, batch: tuple[torch.Tensor]) -> torch.Tensor:
        assert self._train is not None
        x = self._train.sparse_rows(batch[0])
        logits, mu, logvar = self.module(x)
        loss = multinomial_nll_sparse(logits, x)
        if self.variational:
            loss = loss + self.beta() * gaussian_kl(mu, logvar)
        if self.config.l2 > 0:
            loss = loss + self.config.l2 * self.module.weight_sq()
        return loss

    def _on_step(self) -> None:
        self._steps += 1

    def end_epoch(self) -> dict[str, float]:
        return {"beta": self.beta()} if self.variational else {}

    def _score(self, users: torch.Tensor, history: SparseRows | None) -> torch.Tensor:
        mu, _ = self.module.encode(history)
        return fp32_linear(self.module.decode_hidden(mu), self.module.dec_out)

    def _score_width(self) -> int:
        return 1

    def item_vectors(self) -> torch.Tensor:
        dec = self.module.dec_out.weight.detach()
        enc = self.module.enc_in.weight.detach()  # [n_items, hidden]: one row per input item
        choice = self.config.item_vectors
        if choice == "latent":
            return self._one_item_codes()
        if choice == "decoder":
            return dec
        if choice == "encoder":
            return enc
        if choice == "both":
            return torch.cat([F.normalize(dec.float(), dim=1), F.normalize(enc.float(), dim=1)], dim=1)
        raise ValueError(f"{self.name}: item_vectors must be decoder, encoder, both or latent, not {choice!r}")

    @torch.no_grad()
    def _one_item_codes(self, chunk: int = 4096) -> torch.Tensor:
        """The mean code of each item alone as a history: where the encoder puts a one-item user."""
        self.module.eval()
        out = []
        for start in range(0, self.n_items, chunk):
            items = torch.arange(start, min(start + chunk, self.n_items), device=self.device)
            rows = torch.arange(len(items), device=self.device)
            one = SparseRows(rows, items, torch.ones(len(items), device=self.device), rows, len(items), self.n_items)
            out.append(self.module.encode(one)[0].float())
        return torch.cat(out)


class MultDAE(MultVAE):
    """Mult-DAE (Liang et al. 2018): the same network with a deterministic code, no KL term."""

    name = "multdae"
    config_cls = MultDAEConfig
    variational = False


# --------------------------------------------------------------------------------------------------
# CDAE
# --------------------------------------------------------------------------------------------------


class _CDAENet(nn.Module):
    def __init__(self, n_users: int, n_items: int, hidden: int, corruption: float, hidden_act: str) -> None:
        super().__init__()
        self.corruption = corruption
        self.act = torch.sigmoid if hidden_act == "sigmoid" else (lambda h: h)
        self.enc_in = SparseInputLinear(n_items, hidden)
        self.user = nn.Embedding(n_users, hidden)
        self.dec_out = nn.Linear(hidden, n_items)
        _init_linear(self.dec_out)
        nn.init.normal_(self.user.weight, std=0.01)

    def hidden(self, users: torch.Tensor, x: SparseRows) -> torch.Tensor:
        # drop-out corruption: zero with prob q, scale the rest by 1/(1-q) (paper, sec. 4.2)
        x = x.with_vals(F.dropout(x.vals, self.corruption, self.training))
        return self.act(self.enc_in(x) + self.user(users))

    def forward(self, users: torch.Tensor, x: SparseRows) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(users, x)
        return self.dec_out(h), h


@dataclass
class CDAEConfig:
    hidden: int = 200  # tuned on P2 (the paper's default K=50; 100 -> 200: HR@10 0.065 -> 0.077)
    corruption: float = 0.5
    num_neg: int = 5  # sampled zeros per observed item of the user; <= 0: every zero entry (full loss)
    l2: float = 1e-5  # lambda of lambda/2 * (||W||^2 + ||W'||^2 + ||V||^2 + ||b||^2)
    # the paper's variants (sec. 4.3): hidden mapping h and output mapping f, each sigmoid or
    # identity, with the logistic ("log", f = sigmoid) or the squared loss ("square")
    loss: str = "log"
    hidden_act: str = "sigmoid"
    output_act: str = "sigmoid"
    lr: float = 1e-3
    batch_size: int = 128
    epochs: int = 200
    patience: int | None = 20  # evaluations without a new best before stopping; None: no early stopping
    eval_every: int = 1
    valid_metric: str = "NDCG@10"
    weight_decay: float = 0.0
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16: recmodels.device.autocast


class CDAE(TorchUserModel):
    """CDAE (Wu et al. 2016): denoising AE with a user node and negative sampling of zeros."""

    name = "cdae"
    config_cls = CDAEConfig
    item_row_keys = ("dec_out.weight", "dec_out.bias")
    item_input_keys = ("enc_in.weight",)
    user_row_keys = ("user.weight",)

    def _build(self, n_users: int, n_items: int) -> nn.Module:
        c = self.config
        for key, value, allowed in (
            ("loss", c.loss, ("log", "square")),
            ("hidden_act", c.hidden_act, ("sigmoid", "identity")),
            ("output_act", c.output_act, ("sigmoid", "identity")),
        ):
            if value not in allowed:
                raise ValueError(f"cdae {key} must be one of {allowed}, not {value!r}")
        if c.loss == "log" and c.output_act != "sigmoid":
            raise ValueError("cdae: the logistic loss needs the sigmoid output mapping")
        return _CDAENet(n_users, n_items, c.hidden, c.corruption, c.hidden_act)

    _prepare = MultVAE._prepare
    _epoch_batches = MultVAE._epoch_batches

    def _loss(self, batch: tuple[torch.Tensor]) -> torch.Tensor:
        assert self._train is not None
        c = self.config
        users = batch[0]
        xs = self._train.sparse_rows(users)
        logits, _ = self.module(users, xs)
        x = xs.dense()
        if c.num_neg > 0:
            # num_neg x |O_u| uniform draws per user; a draw that hits an observed item is just an
            # observed entry (the mask is a set), which keeps this one scatter, no rejection loop.
            lens = self._train.row_lengths()[users] * c.num_neg
            rows = torch.repeat_interleave(torch.arange(len(users), device=self.device), lens)
            cols = torch.randint(0, x.shape[1], (len(rows),), device=self.device)
            mask = x > 0
            mask[rows, cols] = True
            mask = mask.float()
        else:
            mask = torch.ones_like(x)
        if c.loss == "log":
            loss = cdae_loss(logits, x, mask)
        else:
            out = torch.sigmoid(logits.float()) if c.output_act == "sigmoid" else logits
            loss = masked_squared_error(out, x, mask)
        if c.l2 > 0:
            m = self.module
            reg = (
                m.enc_in.weight.pow(2).sum()
                + m.dec_out.weight.pow(2).sum()
                + m.enc_in.bias.pow(2).sum()
                + m.dec_out.bias.pow(2).sum()
            )
            # paper: sum_u loss_u + l2/2 * R(all). Dividing by #users gives our per-user mean loss, and
            # a batch's unbiased share of ||V||^2 is its own rows' norms over the batch size.
            loss = loss + 0.5 * c.l2 * (reg / max(self.n_users, 1) + m.user(users).pow(2).sum() / len(users))
        return loss

    def _score(self, users: torch.Tensor, history: SparseRows | None) -> torch.Tensor:
        return fp32_linear(self.module.hidden(users, history), self.module.dec_out)

    def item_vectors(self) -> torch.Tensor:
        return self.module.dec_out.weight.detach()


# --------------------------------------------------------------------------------------------------
# AutoRec
# --------------------------------------------------------------------------------------------------


class _AutoRecNet(nn.Module):
    def __init__(self, n_in: int, hidden: int) -> None:
        super().__init__()
        self.enc_in = SparseInputLinear(n_in, hidden)
        self.dec_out = nn.Linear(hidden, n_in)
        _init_linear(self.dec_out)

    def forward(self, r: SparseRows) -> torch.Tensor:
        return self.dec_out(torch.sigmoid(self.enc_in(r)))

    def weight_sq(self) -> torch.Tensor:
        return self.enc_in.weight.pow(2).sum() + self.dec_out.weight.pow(2).sum()


@dataclass
class AutoRecConfig:
    variant: str = "item"  # "item" (I-AutoRec, the paper's better variant) or "user" (U-AutoRec)
    hidden: int = 500
    num_neg: int = 5  # sampled zeros per observed entry; <= 0: full dense loss (every zero)
    l2: float = 1.0  # lambda of lambda/2 (||W||^2 + ||V||^2), relative to the loss summed over samples
    lr: float = 1e-3
    batch_size: int = 128
    epochs: int = 200
    patience: int | None = 20  # evaluations without a new best before stopping; None: no early stopping
    eval_every: int = 1
    valid_metric: str = "NDCG@10"
    weight_decay: float = 0.0
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16: recmodels.device.autocast


class AutoRec(TorchUserModel):
    """AutoRec (Sedhain et al. 2015), I-AutoRec by default, on the binary matrix for top-N."""

    name = "autorec"
    config_cls = AutoRecConfig

    def __init__(self, config=None, device=None, seed: int = 0) -> None:
        super().__init__(config, device, seed)
        if self.config.variant not in ("item", "user"):
            raise ValueError(f"autorec variant must be 'item' or 'user', not {self.config.variant!r}")
        self.item_based = self.config.variant == "item"
        self.needs_history = True
        self._codes_pre: torch.Tensor | None = None  # I-AutoRec: encoder pre-activations of every item

    def _growth_keys(self):
        if self.item_based:  # the network's input/output units are users
            return (), (), ("dec_out.weight", "dec_out.bias"), ("enc_in.weight",)
        return ("dec_out.weight", "dec_out.bias"), ("enc_in.weight",), (), ()

    def _build(self, n_users: int, n_items: int) -> nn.Module:
        return _AutoRecNet(n_users if self.item_based else n_items, self.config.hidden)

    def _prepare(self, train: Interactions) -> None:
        m = sp.csr_matrix(train.matrix)
        # samples: item columns (I-AutoRec) or user rows (U-AutoRec), as a CSR of samples x units
        self._samples = DeviceCSR(m.T.tocsr() if self.item_based else m, self.device)
        self._active = torch.nonzero(self._samples.row_lengths() > 0).squeeze(1)
        self._train_csr = m

    def _epoch_batches(self, generator: torch.Generator) -> Iterator[tuple[torch.Tensor]]:
        perm = self._active[torch.randperm(len(self._active), generator=generator).to(self.device)]
        for start in range(0, len(perm), self.config.batch_size):
            yield (perm[start : start + self.config.batch_size],)

    def _loss(self, batch: tuple[torch.Tensor]) -> torch.Tensor:
        c = self.config
        self._codes_pre = None  # weights change: item codes are recomputed at the next scoring
        rs = self._samples.sparse_rows(batch[0])
        pred = self.module(rs)
        r = rs.dense()
        if c.num_neg > 0:
            lens = self._samples.row_lengths()[batch[0]] * c.num_neg
            rows = torch.repeat_interleave(torch.arange(len(r), device=self.device), lens)
            cols = torch.randint(0, r.shape[1], (len(rows),), device=self.device)
            mask = r > 0
            mask[rows, cols] = True
            mask = mask.float()
        else:
            mask = torch.ones_like(r)
        # lambda/2 ||W||^2 is stated for the loss summed over all samples; the loss here is a
        # per-sample mean, so the penalty is divided by the number of samples.
        return masked_squared_error(pred, r, mask) + 0.5 * c.l2 * self.module.weight_sq() / len(self._active)

    def _after_fit(self, train: Interactions) -> None:
        self._refresh_codes()

    @torch.no_grad()
    def _refresh_codes(self) -> None:
        if not self.item_based:
            return
        samples = DeviceCSR(self._train_csr.T.tocsr(), self.device)
        pre = torch.empty((self.n_items, self.config.hidden), device=self.device)
        step = max(1, (1 << 24) // max(self.n_users, 1))
        for start in range(0, self.n_items, step):
            rows = torch.arange(start, min(start + step, self.n_items), device=self.device)
            pre[start : start + len(rows)] = self.module.enc_in(samples.sparse_rows(rows, n_cols=self.n_users))
        self._codes_pre = pre

    def _score(self, users: torch.Tensor, history: SparseRows | None) -> torch.Tensor:
        if not self.item_based:
            return fp32_linear(torch.sigmoid(self.module.enc_in(history)), self.module.dec_out)
        if self._codes_pre is None:
            self._refresh_codes()
        w = self.module.dec_out.weight.float()[users]  # [B, hidden]: user u's output unit
        b = self.module.dec_out.bias.float()[users]
        codes = torch.sigmoid(self._codes_pre)
        scores = w @ codes.T + b[:, None]
        # entries where the history differs from the training matrix change that item's input
        # column in entry u only: recompute those (u, i) codes exactly (sparse, vectorised)
        train_rows = DeviceCSR(self._train_csr[users.cpu().numpy()], self.device).dense_rows(
            torch.arange(len(users), device=self.device), n_cols=self.n_items
        )
        diff = history.dense() - train_rows
        b_idx, i_idx = torch.nonzero(diff, as_tuple=True)
        if len(b_idx):
            v = self.module.enc_in.weight.float()[users[b_idx]]  # [nnz, hidden]: input unit of user u
            code = torch.sigmoid(self._codes_pre[i_idx] + v * diff[b_idx, i_idx, None])
            scores[b_idx, i_idx] = (w[b_idx] * code).sum(1) + b[b_idx]
        return scores

    def item_vectors(self) -> torch.Tensor:
        if self.item_based:
            if self._codes_pre is None:
                self._refresh_codes()
            return torch.sigmoid(self._codes_pre)
        return self.module.dec_out.weight.detach()

    # the training matrix is part of an I-AutoRec model (items are encoded from their columns)
    def state_dict(self) -> dict[str, torch.Tensor]:
        state = super().state_dict()
        if self.item_based and self.module is not None:
            m = self._train_csr
            state["train_indptr"] = torch.from_numpy(m.indptr.astype(np.int64))
            state["train_indices"] = torch.from_numpy(m.indices.astype(np.int64))
        return state

    extra_state_keys = ("train_indptr", "train_indices")

    def _load_extra_state(self, state: dict[str, torch.Tensor], old_items: int, old_users: int) -> None:
        if not self.item_based:
            return
        from recmodels.checkpoint import CheckpointError

        if "train_indptr" not in state or "train_indices" not in state:
            raise CheckpointError("item-based AutoRec checkpoint without its training matrix")
        indptr = state.pop("train_indptr").numpy()
        indices = state.pop("train_indices").numpy()
        ok = (
            indptr.ndim == 1 and len(indptr) == old_users + 1 and indptr[0] == 0 and indptr[-1] == len(indices)
            and bool((np.diff(indptr) >= 0).all()) and (len(indices) == 0 or 0 <= indices.min() <= indices.max() < old_items)
        )  # fmt: skip
        if not ok:
            raise CheckpointError("item-based AutoRec checkpoint: its training matrix does not fit its sizes")
        indptr = np.concatenate([indptr, np.full(self.n_users - old_users, indptr[-1], dtype=np.int64)])
        self._train_csr = sp.csr_matrix(
            (np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(self.n_users, self.n_items)
        )

    @classmethod
    def load(cls, directory, n_items=None, n_users=None, device=None) -> AutoRec:
        model = super().load(directory, n_items=n_items, n_users=n_users, device=device)
        model._refresh_codes()
        return model
