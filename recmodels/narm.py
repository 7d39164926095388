"""NARM: Neural Attentive Session-based Recommendation (Li, Ren, Chen, Ren, Lian, Ma; CIKM 2017).

Implemented (paper feature -> here):
- item embedding (``embedding``), GRU encoder (``hidden`` units) over the clicks of the session;
- global encoder c_g = h_t (last hidden state);
- local encoder c_l = sum_j alpha_tj h_j with alpha_tj = v^T sigmoid(A1 h_t + A2 h_j) (the paper's
  eq. 8, no softmax), over all hidden states of the current prefix; ``attention="softmax"``
  normalises alpha_t over j <= t, as the authors' Theano code does (the unnormalised local vector
  grows with the prefix length);
- session representation c_t = [c_g ; c_l]; bi-linear decoder S_i = emb_i^T B c_t against the same
  item embeddings as the input; full softmax cross-entropy over all items;
- dropout 0.25 between the item embedding and the GRU, 0.5 between c_t and the decoder (paper /
  official code); Adam; embedding 50, hidden 100. The paper trains with lr 1e-3 and batch 512; the
  config defaults are the values tuned for P1-sized logs (lr 5e-3, batch 128, per-epoch lr decay
  0.75, 10 epochs; see tasks/tools/train_session.py), the paper's values are one override away;
- data augmentation: every prefix of a training session is one example. The encoder is causal, so
  all prefixes of a session come out of one pass (same examples and loss as the expanded data
  set); a batch holds whole sessions of similar length with about ``batch_size`` prefixes;
- early stopping on validation MRR@20 (best state kept), fixed seeds.

Options beyond the paper: ``lr_decay`` (per-epoch multiplicative learning-rate decay, 1.0 = off);
the project's small-log defaults use it (tuned on P1's validation split, tasks/tools/train_session.py).

Left out / deviations: ``max_len`` (off by default) optionally trains on the last ``max_len``
clicks of longer sessions only, to bound the attention's memory on bot-like sessions; scoring then
reads the same window (the last ``max_len`` clicks of each prefix, the encoder restarted at the
window's first click), so it never sees prefixes longer than any it was trained on. Attention is
computed in position chunks under ``attention_budget``.
Items unknown to the model enter the encoder as a zero embedding (they have no vector) instead of
raising. Initialisation: Xavier (the paper does not specify one).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from recmodels.base import FitReport, SessionRecommender
from recmodels.checkpoint import (
    CheckpointError,
    check_shapes,
    grow_rows,
    load_checkpoint,
    module_shapes,
    validate_meta,
)
from recmodels.data import Sessions
from recmodels.device import autocast, seed_everything
from recmodels.session_batching import known_items, length_bucketed_batches, pad_sessions, validation_mrr

log = logging.getLogger(__name__)


@dataclass
class NARMConfig:
    embedding: int = 50
    hidden: int = 100
    dropout_embed: float = 0.25
    dropout_ct: float = 0.5
    learning_rate: float = 5e-3  # paper: 1e-3
    weight_decay: float = 0.0
    lr_decay: float = 0.75  # learning rate x this after every epoch (1.0 = constant, as the paper)
    batch_size: int = 128  # prefixes (predictions) per mini-batch; paper: 512
    n_epochs: int = 10
    patience: int = 0  # > 0 and a validation set: stop after this many epochs without MRR@20 gain
    max_len: int = 0  # > 0: train on (and score from) the last max_len clicks of longer sessions only
    attention: str = "paper"  # "paper": eq. 8 unnormalised | "softmax": normalised over j <= t (authors' code)
    attention_budget: int = 1 << 25  # floats of the [n, t, j, hidden] attention block per chunk


    def __post_init__(self) -> None:
        if self.attention not in ("paper", "softmax"):
            raise ValueError(f"attention must be 'paper' or 'softmax', not {self.attention!r}")


class NARMNet(torch.nn.Module):
    def __init__(self, n_items: int, cfg: NARMConfig) -> None:
        super().__init__()
        E, H = cfg.embedding, cfg.hidden
        self.cfg = cfg
        self.emb = torch.nn.Embedding(n_items, E)
        self.gru = torch.nn.GRU(E, H, batch_first=True)
        self.A1 = torch.nn.Linear(H, H, bias=False)
        self.A2 = torch.nn.Linear(H, H, bias=False)
        self.v = torch.nn.Linear(H, 1, bias=False)
        self.B = torch.nn.Linear(2 * H, E, bias=False)
        torch.nn.init.xavier_normal_(self.emb.weight)
        for lin in (self.A1, self.A2, self.v, self.B):
            torch.nn.init.xavier_normal_(lin.weight)
        for name, p in self.gru.named_parameters():
            (torch.nn.init.xavier_uniform_ if "weight" in name else torch.nn.init.zeros_)(p)

    def encode(self, x: torch.Tensor, known: torch.Tensor, training: bool) -> torch.Tensor:
        """Session representation after every position: ``[n, L, 2H]`` from item ids ``x`` [n, L] (right-padded)."""
        cfg = self.cfg
        e = self.emb(x) * known[..., None]  # unknown / padding ids -> zero vector
        e = F.dropout(e, cfg.dropout_embed, training)
        hs, _ = self.gru(e)  # causal: position t only sees clicks <= t, padding after is harmless
        q = self.A1(hs)
        k = self.A2(hs)
        n, L, H = hs.shape
        # position chunks keep the [n, Tc, t1, H] attention block under the budget
        tc = max(1, min(L, cfg.attention_budget // max(1, n * L * H)))
        pos = torch.arange(L, device=x.device)
        outs = []
        for t0 in range(0, L, tc):
            t1 = min(L, t0 + tc)
            a = self.v(torch.sigmoid(q[:, t0:t1, None, :] + k[:, None, :t1, :]))[..., 0]  # [n, Tc, t1]
            causal = pos[None, :t1] <= pos[t0:t1, None]  # prefix t attends to states j <= t
            if cfg.attention == "softmax":
                a = torch.softmax(a.float().masked_fill(~causal, -float("inf")), -1).to(hs.dtype)
            else:
                a = a * causal
            outs.append(a @ hs[:, :t1])
        c_local = torch.cat(outs, 1)
        return torch.cat([hs, c_local], -1)

    def decode(self, c: torch.Tensor, training: bool) -> torch.Tensor:
        """Bi-linear scores ``[rows, n_items]`` = emb B c."""
        c = F.dropout(c, self.cfg.dropout_ct, training)
        return self.B(c) @ self.emb.weight.t()


class NARM(SessionRecommender):
    """NARM session model (see module docstring)."""

    name = "narm"

    def __init__(
        self,
        config: NARMConfig | dict[str, Any] | None = None,
        device: str | torch.device | None = None,
        seed: int = 0,
    ) -> None:
        if isinstance(config, dict):
            config = NARMConfig(**config)
        super().__init__(config or NARMConfig(), device, seed)
        self.config: NARMConfig
        self.module: NARMNet | None = None

    def _build(self, n_items: int) -> None:
        torch.manual_seed(self.seed)
        self.n_items = n_items
        self.module = NARMNet(n_items, self.config).to(self.device)

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    @classmethod
    def load(
        cls, directory: str | Path, n_items: int | None = None, device: str | torch.device | None = None
    ) -> NARM:
        """Load a checkpoint; ``n_items`` > the saved vocabulary appends new items (old items score as before)."""
        state, meta = load_checkpoint(Path(directory))
        cfg = validate_meta(Path(directory), meta, cls.name, NARMConfig, {"n_items": n_items})
        model = cls(cfg, device=device, seed=int(meta.get("seed", 0)))
        old = int(meta["n_items"])
        # keys and shapes against the configuration (module built on the meta device) before any copy
        check_shapes(directory, state, module_shapes(lambda: NARMNet(old, cfg)))
        new = old if n_items is None else int(n_items)
        if new != old:
            state = dict(state)
            gen = torch.Generator().manual_seed(model.seed)  # the same checkpoint always grows the same way
            state["emb.weight"] = grow_rows(state["emb.weight"], new, generator=gen)
        model._build(new)
        try:
            model.module.load_state_dict({k: v.to(model.device) for k, v in state.items()})
        except (KeyError, RuntimeError) as exc:
            raise CheckpointError(f"{directory}: weights do not fit the configuration ({exc})") from None
        return model

    def flops_per_train_event(self) -> float:
        """Approximate matmul FLOPs of one training prefix (forward + backward = 3x forward)."""
        cfg = self.config
        E, H = cfg.embedding, cfg.hidden
        gru = 2 * 3 * H * (E + H)
        att = 2 * 2 * H * H + 2 * H
        dec = 2 * 2 * H * E + 2 * E * self.n_items
        return 3.0 * (gru + att + dec)

    def _batch(self, items: np.ndarray, offsets: np.ndarray, sel: np.ndarray, max_len: int | None):
        padded, lengths = pad_sessions(items, offsets, sel, pad=-1, max_len=max_len)
        L = padded.shape[1]
        # positions with a next click: t < len - 1; their flat index in [n * L] and their target
        has_next = np.arange(L)[None, :] < (lengths - 1)[:, None]
        rows = np.flatnonzero(has_next)
        targets = padded.reshape(-1)[rows + 1]
        dev = self.device
        return (
            torch.from_numpy(padded).to(dev, non_blocking=True),
            torch.from_numpy(rows).to(dev, non_blocking=True),
            torch.from_numpy(targets).to(dev, non_blocking=True),
        )

    def fit(self, train: Sessions, valid: Sessions | None = None) -> FitReport:
        cfg = self.config
        seed_everything(self.seed)
        self._build(train.n_items)
        if (warm := self._warm_model(n_items=train.n_items)) is not None:
            self._copy_warm(self, warm.state_dict())
        m = self.module
        opt = torch.optim.Adam(m.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.lr_decay)
        rng = np.random.default_rng(self.seed)
        lengths = train.lengths
        if cfg.max_len > 0:
            lengths = np.minimum(lengths, cfg.max_len)
        report = FitReport()
        best_score, best_state, bad = -1.0, None, 0
        t_start = time.perf_counter()
        for epoch in range(cfg.n_epochs):
            t0 = time.perf_counter()
            m.train()
            loss_sum = torch.zeros((), device=self.device)
            n_pred = 0
            for sel in length_bucketed_batches(lengths, cfg.batch_size, rng):
                x, rows, targets = self._batch(train.items, train.offsets, sel, cfg.max_len or None)
                n_pred += len(rows)
                xi, known = known_items(x, self.n_items)
                with autocast(self.device):
                    c = m.encode(xi, known, True)
                    c = c.reshape(-1, c.shape[-1]).index_select(0, rows)
                    logits = m.decode(c, True)
                loss = F.cross_entropy(logits.float(), targets)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_sum += loss.detach() * len(rows)
            sched.step()
            epoch_loss = float(loss_sum) / max(n_pred, 1)
            rec: dict[str, float] = {
                "epoch": epoch + 1,
                "loss": epoch_loss,
                "seconds": time.perf_counter() - t0,
            }
            report.epochs = epoch + 1
            report.train_events += n_pred
            if not math.isfinite(epoch_loss):
                raise FloatingPointError(f"NARM: loss became {epoch_loss} in epoch {epoch + 1}")
            if valid is not None:
                met = validation_mrr(self, valid)
                rec.update({f"valid_{k}": v for k, v in met.items()})
                if met["MRR@20"] > best_score:
                    best_score, bad = met["MRR@20"], 0
                    best_state = {k: v.detach().clone() for k, v in m.state_dict().items()}
                    report.best_epoch = epoch + 1
                    report.valid_metrics = dict(met)
                else:
                    bad += 1
            report.history.append(rec)
            log.info("narm epoch %d: %s", epoch + 1, {k: round(v, 4) for k, v in rec.items()})
            if valid is not None and cfg.patience > 0 and bad >= cfg.patience:
                break
        if best_state is not None:
            m.load_state_dict(best_state)
        else:
            report.best_epoch = report.epochs
        m.eval()
        report.train_seconds = time.perf_counter() - t_start
        return report

    @torch.no_grad()
    def score_next(self, sessions: Sessions) -> torch.Tensor:
        if self.module is None:
            raise RuntimeError("NARM: fit or load the model first")
        m = self.module
        m.eval()
        n_ev = len(sessions.items)
        out = torch.empty(n_ev, self.n_items, device=self.device)
        if n_ev == 0:
            return out
        lengths = sessions.lengths
        # sessions of similar length together, about 4096 padded positions per group
        order = np.argsort(lengths, kind="stable")
        L_sorted = lengths[order]
        group = np.cumsum(L_sorted) // 4096
        for g in np.unique(group):
            sel = order[group == g]
            x, _, _ = self._batch(sessions.items, sessions.offsets, sel, None)
            xi, known = known_items(x, self.n_items)
            with autocast(self.device):
                c = m.encode(xi, known, False)
            L = x.shape[1]
            lens = lengths[sel]
            mask = np.arange(L)[None, :] < lens[:, None]
            flat = torch.from_numpy(np.flatnonzero(mask)).to(self.device)
            # destination rows: event index of (session, position)
            within = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
            dest = np.repeat(sessions.offsets[sel], lens) + within
            # float32 scores, not bf16: with conservative ties, bf16 rounding would create false ties
            with torch.autocast(self.device.type, enabled=False):
                sc = m.decode(c.reshape(-1, c.shape[-1]).index_select(0, flat).float(), False)
            out[torch.from_numpy(dest).to(self.device)] = sc
        if self.config.max_len > 0:
            self._score_windows(sessions, out)
        return out

    def _score_windows(self, sessions: Sessions, out: torch.Tensor) -> None:
        """Rows of prefixes longer than ``max_len``: re-scored from their last ``max_len`` clicks, the
        window the model was trained on (the encoder restarted at the window's first click)."""
        W = self.config.max_len
        m = self.module
        lens = sessions.lengths
        pos = np.arange(len(sessions.items)) - np.repeat(sessions.offsets[:-1], lens)
        rows = np.flatnonzero(pos >= W)  # prefix length pos + 1 > W
        if len(rows) == 0:
            return
        per = max(1, 4096 // W)
        for a in range(0, len(rows), per):
            r = rows[a : a + per]
            win = np.asarray(sessions.items, dtype=np.int64)[r[:, None] - np.arange(W - 1, -1, -1)[None, :]]
            xi, known = known_items(torch.from_numpy(win).to(self.device), self.n_items)
            with autocast(self.device):
                c = m.encode(xi, known, False)[:, -1]
            with torch.autocast(self.device.type, enabled=False):
                out[torch.from_numpy(r).to(self.device)] = m.decode(c.float(), False)
