"""V-SkNN (Ludewig & Jannach, "Evaluation of session-based recommendation algorithms", UMUAI 2018),
faithful to session-rec's ``knn.vsknn.VMContextKNN``, vectorised over batches of prefixes.

Implemented, per prefix i_1..i_L of the current session (L counts repeated clicks):
- candidate neighbours: training sessions containing any prefix item, restricted to the
  ``sample_size`` most recent ones (session time = its last click; ``sampling='recent'``);
- position weights of the current session's items, w(i) for the *last* occurrence at 1-based
  position p: ``div`` p/L (default, linear decay towards the past), ``linear``
  1 - 0.1 (L - p) if p <= 10 else 0 (session-rec's formula, quirk included), ``same``, ``log``
  1/log10(L - p + 1.7), ``quadratic`` (p/L)^2;
- similarity = dot product of the weighted prefix with the neighbour's binary item set, divided by
  the number of distinct prefix items (session-rec's ``vec``); only similarity > 0 is kept and the
  ``k`` most similar neighbours are used (ties: more recent session first);
- item score = sum over neighbours containing it of sim x decay(step) x (1 + idf(item) x
  ``idf_weighting``), where step = 1 + distance from the prefix end to the most recent prefix item
  the neighbour contains and decay is ``weighting_score`` (``div`` 1/step default, ``linear``,
  ``same``, ``log``, ``quadratic``); idf(item) = log(#train sessions / #train clicks of item);
- items already in the prefix stay candidates (session-rec ``remind=True``).

Defaults: ``k=100, sample_size=500, weighting='div', weighting_score='div'`` (session-rec's
constructor defaults, with its documented k / sample_size) and ``idf_weighting=1`` (off in
session-rec's constructor, on in its rsc15 configs; chosen on P1's tuning split train_tr ->
train_valid, HR@20 0.6296 -> 0.6466, over idf 0 / 1 / 5 and quadratic weightings).
Left out: random sampling, dwelling time, time-decayed similarity (``weighting_time``),
``last_n_days`` / ``last_n_clicks``, ``extend``, push/add reminders (all off by default) and the
final division by the maximum (rank-neutral). Ties among neighbours with equal similarity at the
k-th place are broken by recency here, by Python set order in session-rec.

Exactness of the candidate cut: the ``sample_size`` most recent sessions of a union of item
session lists are all within the ``sample_size`` most recent of their own item's list, so each
item's list is truncated to that length at fit time; this bounds memory and changes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from recmodels.base import FitReport, SessionRecommender
from recmodels.baselines import (
    event_position,
    event_session,
    prefix_pairs,
    session_item_matrix,
    sparse_from_state,
    sparse_state,
)
from recmodels.data import Sessions

_POSITION_WEIGHTS = {
    "same": lambda p, n: np.ones_like(p, dtype=np.float64),
    "div": lambda p, n: p / n,
    "linear": lambda p, n: np.where(p <= 10, 1.0 - 0.1 * (n - p), 0.0),
    "log": lambda p, n: 1.0 / np.log10((n - p) + 1.7),
    "quadratic": lambda p, n: (p / n) ** 2,
}
_STEP_DECAYS = {
    "same": lambda s: np.ones_like(s, dtype=np.float64),
    "div": lambda s: 1.0 / s,
    "linear": lambda s: np.where(s <= 100, 1.0 - 0.1 * s, 0.0),
    "log": lambda s: 1.0 / np.log10(s + 1.7),
    "quadratic": lambda s: 1.0 / (s * s),
}


@dataclass
class VSKNNConfig:
    k: int = 100
    sample_size: int = 500
    weighting: str = "div"
    weighting_score: str = "div"
    idf_weighting: float = 1.0
    batch_events: int = 2048  # prefixes scored together (bounds the sparse intermediates)


def _segment_ranks(groups: np.ndarray) -> np.ndarray:
    """0-based rank of each element inside its run of equal ``groups`` values (groups sorted)."""
    n = len(groups)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    lens = np.diff(np.r_[starts, n])
    return np.arange(n, dtype=np.int64) - np.repeat(starts, lens)


class VSKNN(SessionRecommender):
    name = "vsknn"

    def __init__(self, config: VSKNNConfig | dict | None = None, device=None, seed: int = 0) -> None:
        cfg = VSKNNConfig(**config) if isinstance(config, dict) else (config or VSKNNConfig())
        if cfg.weighting not in _POSITION_WEIGHTS or cfg.weighting_score not in _STEP_DECAYS:
            raise ValueError(f"unknown weighting {cfg.weighting!r} / weighting_score {cfg.weighting_score!r}")
        super().__init__(cfg, device, seed)
        self.sess_items = sp.csr_matrix((0, 0))  # sessions (most recent first) x items, binary
        self.item_sess = sp.csr_matrix((0, 0))  # items x sessions, each row cut to sample_size most recent
        self.idf = np.zeros(0)

    def fit(self, train: Sessions, valid: Sessions | None = None) -> FitReport:
        t0 = time.perf_counter()
        cfg = self.config
        self.n_items = train.n_items
        m = session_item_matrix(train, self.n_items, binary=True)
        if train.times is not None:
            last_time = (
                np.maximum.reduceat(train.times, train.offsets[:-1]) if len(train.items) else np.zeros(0)
            )
            last_time = np.where(train.lengths > 0, last_time, -np.inf)
        else:  # no clock: file order stands for time
            last_time = np.arange(train.n_sessions, dtype=np.float64)
        recency = np.argsort(-last_time, kind="stable")
        self.sess_items = m[recency].tocsr()
        self.item_sess = self._cut(self.sess_items.T.tocsr(), cfg.sample_size)
        clicks = np.bincount(train.items, minlength=self.n_items).astype(np.float64)
        with np.errstate(divide="ignore"):
            self.idf = np.where(clicks > 0, np.log(train.n_sessions / np.maximum(clicks, 1.0)), 0.0)
        return FitReport(train_seconds=time.perf_counter() - t0, train_events=len(train.items))

    @staticmethod
    def _cut(item_sess: sp.csr_matrix, n: int) -> sp.csr_matrix:
        item_sess.sort_indices()  # session index = recency rank, so the first entries are the most recent
        counts = np.diff(item_sess.indptr)
        rank = np.arange(item_sess.nnz) - np.repeat(item_sess.indptr[:-1], counts)
        keep = rank < n
        rows = np.repeat(np.arange(item_sess.shape[0]), counts)[keep]
        out = sp.csr_matrix(
            (item_sess.data[keep], (rows, item_sess.indices[keep])), shape=item_sess.shape, dtype=np.float64
        )
        out.sort_indices()
        return out

    def score_next(self, sessions: Sessions) -> torch.Tensor:
        return self._score(sessions, last_only=False)

    def score_last(self, sessions: Sessions) -> torch.Tensor:
        """Scores after each session's last click only, ``[n_sessions, n_items]`` (P2 user sequences)."""
        return self._score(sessions, last_only=True)

    def _score(self, sessions: Sessions, last_only: bool) -> torch.Tensor:
        n_out = sessions.n_sessions if last_only else len(sessions.items)
        out = torch.empty((n_out, self.n_items), dtype=torch.float32, device=self.device)
        bound = self.config.batch_events
        s = 0
        while s < sessions.n_sessions:
            e = int(np.searchsorted(sessions.offsets, sessions.offsets[s] + bound, side="right")) - 1
            e = min(max(e, s + 1), sessions.n_sessions)
            a, b = int(sessions.offsets[s]), int(sessions.offsets[e])
            sub = Sessions(
                items=sessions.items[a:b], offsets=sessions.offsets[s : e + 1] - a, n_items=sessions.n_items
            )
            block = torch.from_numpy(self._score_block(sub, last_only)).to(self.device)
            if last_only:
                out[s:e] = block
            else:
                out[a:b] = block
            s = e
        return out

    def _score_block(self, sessions: Sessions, last_only: bool = False) -> np.ndarray:
        cfg = self.config
        n_items = self.n_items
        pos = event_position(sessions)
        if last_only:  # one row per session: its whole click list is the prefix
            n_rows = sessions.n_sessions
            rows, ev = event_session(sessions), np.arange(len(sessions.items), dtype=np.int64)
            length = sessions.lengths.astype(np.int64)
        else:  # one row per event: the prefix up to and including it
            n_rows = len(sessions.items)
            rows, ev = prefix_pairs(sessions)
            length = pos + 1  # prefix length per row, repeats included
        item = sessions.items[ev]
        p = pos[ev] + 1  # 1-based position of the click in the prefix

        # keep the last occurrence of each (row, item): pairs are ordered by row then position
        key = rows * (n_items + 1) + np.minimum(item, n_items)
        order = np.argsort(key, kind="stable")
        key_s = key[order]
        last = np.r_[key_s[1:] != key_s[:-1], True]
        sel = order[last]
        u_key, u_row, u_item, u_pos = key[sel], rows[sel], item[sel], p[sel]
        n_distinct = np.bincount(u_row, minlength=n_rows)
        w = _POSITION_WEIGHTS[cfg.weighting](u_pos.astype(np.float64), length[u_row].astype(np.float64))
        known = u_item < n_items
        u_key, u_row, u_item, u_pos, w = u_key[known], u_row[known], u_item[known], u_pos[known], w[known]

        # candidate sessions: union of the prefix items' session lists, sample_size most recent
        prefix = sp.csr_matrix((np.ones(len(u_row)), (u_row, u_item)), shape=(n_rows, n_items))
        cand = (prefix @ self.item_sess).tocsr()
        cand.sort_indices()
        counts = np.diff(cand.indptr)
        c_row = np.repeat(np.arange(n_rows, dtype=np.int64), counts)
        rank = np.arange(cand.nnz, dtype=np.int64) - np.repeat(cand.indptr[:-1], counts)
        keep = rank < cfg.sample_size
        c_row, c_sess = c_row[keep], cand.indices[keep].astype(np.int64)

        # expand every (row, candidate) pair by the candidate's items and look them up in the prefix
        si = self.sess_items
        n_per = np.diff(si.indptr)[c_sess]
        pair = np.repeat(np.arange(len(c_row), dtype=np.int64), n_per)
        seg_start = np.cumsum(n_per) - n_per
        flat = np.repeat(si.indptr[c_sess], n_per) + (
            np.arange(len(pair), dtype=np.int64) - np.repeat(seg_start, n_per)
        )
        look = c_row[pair] * (n_items + 1) + si.indices[flat]
        at = np.searchsorted(u_key, look)
        at = np.minimum(at, max(len(u_key) - 1, 0))
        hit = (u_key[at] == look) if len(u_key) else np.zeros(len(look), dtype=bool)
        sim = np.bincount(pair[hit], weights=w[at[hit]], minlength=len(c_row)) / np.maximum(
            n_distinct[c_row], 1
        )
        newest = np.zeros(len(c_row), dtype=np.int64)
        np.maximum.at(newest, pair[hit], u_pos[at[hit]])

        return self._neighbour_scores(n_rows, length, c_row, c_sess, sim, newest)

    def _neighbour_scores(self, n_rows: int, length: np.ndarray, c_row: np.ndarray, c_sess: np.ndarray,
                          sim: np.ndarray, newest: np.ndarray) -> np.ndarray:
        """Item scores from the ``k`` nearest candidates with similarity > 0 of each row (ties: the more
        recent session, i.e. the lower index, first), weighted by the step decay and idf."""
        cfg, si = self.config, self.sess_items
        pos_sim = sim > 0
        c_row, c_sess, sim, newest = c_row[pos_sim], c_sess[pos_sim], sim[pos_sim], newest[pos_sim]
        order = np.lexsort((c_sess, -sim, c_row))
        top = order[_segment_ranks(c_row[order]) < cfg.k]
        step = (length[c_row[top]] - newest[top] + 1).astype(np.float64)
        weight = sim[top] * _STEP_DECAYS[cfg.weighting_score](step)
        neigh = sp.csr_matrix((weight, (c_row[top], c_sess[top])), shape=(n_rows, si.shape[0]))
        scores = np.asarray((neigh @ si).toarray(), dtype=np.float64)
        if cfg.idf_weighting:
            scores *= 1.0 + self.idf[None, :] * cfg.idf_weighting
        return scores.astype(np.float32)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            **sparse_state("sess_items", self.sess_items),
            **sparse_state("item_sess", self.item_sess),
            "idf": torch.from_numpy(self.idf.astype(np.float64)),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.sess_items = sparse_from_state("sess_items", state).astype(np.float64)
        self.item_sess = sparse_from_state("item_sess", state).astype(np.float64)
        self.idf = state["idf"].numpy()
        self.n_items = self.sess_items.shape[1]
