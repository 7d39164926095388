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

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from recmodels.base import SessionRecommender, Step, TrainedModel
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


@dataclass
class NARMConfig:
    embedding: int = 50
    hidden: int = 100
    dropout_embed: float = 0.25
    dropout_ct: float = 0.5
    lr: float = 5e-3  # paper: 1e-3
    weight_decay: float = 0.0
    lr_decay: float = 0.75  # learning rate x this after every epoch (1.0 = constant, as the paper)
    batch_size: int = 128  # prefixes (predictions) per mini-batch; paper: 512
    epochs: int = 10
    patience: int | None = None  # validation MRR@20 evaluations without a new best before stopping; None: never
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


class NARM(TrainedModel, SessionRecommender):
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
        # set up by begin_fit for the Trainer, released by end_fit
        self._opt: torch.optim.Optimizer | None = None
        self._lr_schedule: torch.optim.lr_scheduler.LRScheduler | None = None
        self._train: Sessions | None = None
        self._rng: np.random.Generator | None = None
        self._lengths: np.ndarray | None = None

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

    def begin_fit(self, train: Sessions, warm_from: Path | None) -> None:
        cfg = self.config
        seed_everything(self.seed)
        self._build(train.n_items)
        if warm_from is not None:
            self._copy_warm(self, self._load_warm(warm_from, n_items=train.n_items).state_dict(), warm_from)
        self._opt = torch.optim.Adam(self.module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self._lr_schedule = torch.optim.lr_scheduler.ExponentialLR(self._opt, gamma=cfg.lr_decay)
        self._rng = np.random.default_rng(self.seed)
        self._train = train
        self._lengths = train.lengths if cfg.max_len <= 0 else np.minimum(train.lengths, cfg.max_len)

    def train_batches(self) -> list[np.ndarray]:
        """Whole sessions of similar length, about ``batch_size`` prefixes a batch, shuffled afresh."""
        self.module.train()
        return length_bucketed_batches(self._lengths, self.config.batch_size, self._rng)

    def train_step(self, batch: np.ndarray) -> Step:
        m = self.module
        x, rows, targets = self._batch(self._train.items, self._train.offsets, batch, self.config.max_len or None)
        xi, known = known_items(x, self.n_items)
        with autocast(self.device):
            c = m.encode(xi, known, True)
            c = c.reshape(-1, c.shape[-1]).index_select(0, rows)
            logits = m.decode(c, True)
        loss = F.cross_entropy(logits.float(), targets)
        self._opt.zero_grad(set_to_none=True)
        loss.backward()
        self._opt.step()
        return Step(loss.detach() * len(rows), len(rows), len(rows))

    def end_epoch(self) -> dict[str, float]:
        self._lr_schedule.step()  # per-epoch learning-rate decay
        return {}

    def validate(self, valid: Sessions) -> dict[str, float]:
        return validation_mrr(self, valid)

    def end_fit(self, train: Sessions) -> None:
        self.module.eval()
        self._opt = self._lr_schedule = self._train = None

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
