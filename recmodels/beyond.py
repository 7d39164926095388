"""Beyond accuracy: what a model recommends (coverage, popularity bias, novelty) and for whom it works
(HR / NDCG split by segment), from the one protocol runner's pass and the training popularity.

Definitions (every rule of this module lives here; ``train_counts[i]`` = training interactions of item i):

- **popularity percentile** of item i: the share of catalogue items whose training count is <= c_i
  (1.0 = the most popular item; an item never seen in training gets the share of the zero-count items).
- **novelty** of item i: its self-information ``-log2(p_i)``, ``p_i = max(c_i, 1) / sum(c)`` (an item
  never seen in training counts as seen once, so the figure stays finite).
- **head / long tail**: head = items whose popularity percentile exceeds ``1 - HEAD_SHARE`` (the most
  popular fifth of the catalogue) and that were seen in training; every other item is long tail.
- Per model and cutoff k, over every prediction's top-k list (the list is what the runner ranks: seen
  items excluded for user protocols, every item a candidate for session protocols):
  ``COVERAGE@k`` distinct recommended items / catalogue, ``POPULARITY@k`` mean popularity percentile
  of the recommended entries, ``NOVELTY@k`` their mean self-information (bits), ``TAIL@k`` the share
  of recommended entries that are long tail.
- **Segments** of the predictions (HR@k and NDCG@k within each, and ``n:<segment>`` predictions;
  an empty segment has only its ``n``):
  ``head`` / ``tail`` by the target item; for user protocols ``returning`` / ``new`` by the user's
  history before the test (more than ``NEW_USER_MAX_HISTORY`` items, or at most that many: a user with
  no history at all cannot be ranked by the protocols, so "new" means seen only briefly); for session
  protocols ``len:<bucket>`` by the prefix length at the prediction (``LENGTH_BUCKETS``).

Keys follow the runner's ``NAME@k`` form, the segment after a colon: ``HR:head@20``, ``n:head``.

Pure numpy / torch: no environment, no database.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from recmodels.base import SessionRecommender, UserRecommender
from recmodels.data import Interactions, Sessions, UserTargets
from recmodels.protocols import evaluate_sessions, evaluate_user_sequences, evaluate_users

HEAD_SHARE = 0.2  # the head is the most popular fifth of the catalogue
NEW_USER_MAX_HISTORY = 3  # a user with at most this many items before the test counts as new
# Prefix-length buckets (inclusive bounds; None = open) for session predictions.
LENGTH_BUCKETS: tuple[tuple[int, int | None], ...] = ((1, 1), (2, 2), (3, 4), (5, 9), (10, None))
LIST_FIGURES = ("COVERAGE", "POPULARITY", "NOVELTY", "TAIL")


# ------------------------------------------------------------------------------------ item figures


def item_counts(train: Sessions | Interactions | sp.spmatrix, n_items: int) -> np.ndarray:
    """Training interactions per item, length ``n_items``: clicks of sessions, non-zeros of a matrix."""
    if isinstance(train, Sessions):
        counts = np.bincount(train.items, minlength=n_items)
    else:
        matrix = train.matrix if isinstance(train, Interactions) else train
        counts = np.bincount(sp.csr_matrix(matrix).indices, minlength=n_items)
    return counts[:n_items].astype(np.int64)


def popularity_percentile(counts: np.ndarray) -> np.ndarray:
    """Share of items whose count is <= each item's count (ties share the higher percentile)."""
    c = np.asarray(counts)
    if len(c) == 0:
        return np.zeros(0)
    return np.searchsorted(np.sort(c), c, side="right") / len(c)


def self_information(counts: np.ndarray) -> np.ndarray:
    """``-log2(max(c, 1) / sum(c))`` per item, in bits."""
    c = np.asarray(counts, dtype=np.float64)
    total = max(float(c.sum()), 1.0)
    return -np.log2(np.maximum(c, 1.0) / total)


def head_items(counts: np.ndarray) -> np.ndarray:
    """Boolean mask of the head: popularity percentile above ``1 - HEAD_SHARE`` and seen in training."""
    c = np.asarray(counts)
    return (popularity_percentile(c) > 1.0 - HEAD_SHARE) & (c > 0)


# ------------------------------------------------------------------------------------ list figures


class ListFigures:
    """Streaming coverage / popularity / novelty / tail share of top-k lists (memory: O(n_items))."""

    def __init__(self, train_counts: np.ndarray, ks: Sequence[int]) -> None:
        self.ks = tuple(sorted(set(int(k) for k in ks)))
        self.n_items = len(train_counts)
        self._pct = popularity_percentile(train_counts)
        self._info = self_information(train_counts)
        self._tail = ~head_items(train_counts)
        self._covered = {k: np.zeros(self.n_items, dtype=bool) for k in self.ks}
        self._sums = {k: np.zeros(3) for k in self.ks}  # popularity, novelty, tail entries
        self._entries = dict.fromkeys(self.ks, 0)

    def add(self, top: np.ndarray) -> None:
        """``top`` ``[n, >= max(ks)]`` item indices sorted best first; ``-1`` marks an empty slot."""
        top = np.asarray(top, dtype=np.int64)
        for k in self.ks:
            entries = top[:, :k].reshape(-1)
            entries = entries[(entries >= 0) & (entries < self.n_items)]
            self._covered[k][entries] = True
            self._sums[k] += (self._pct[entries].sum(), self._info[entries].sum(), self._tail[entries].sum())
            self._entries[k] += len(entries)

    def result(self) -> dict[str, float]:
        """The figures per k; none for a k without a single recommended entry (nothing to average)."""
        out: dict[str, float] = {}
        for k in self.ks:
            n = self._entries[k]
            if not n:
                continue
            pop, nov, tail = self._sums[k] / n
            out[f"COVERAGE@{k}"] = float(self._covered[k].sum()) / self.n_items
            out[f"POPULARITY@{k}"] = float(pop)
            out[f"NOVELTY@{k}"] = float(nov)
            out[f"TAIL@{k}"] = float(tail)
        return out


def list_figures(top: np.ndarray, train_counts: np.ndarray, ks: Sequence[int]) -> dict[str, float]:
    """:class:`ListFigures` over one array of lists."""
    acc = ListFigures(train_counts, ks)
    acc.add(top)
    return acc.result()


# ---------------------------------------------------------------------------------------- segments


def segment_figures(ranks: np.ndarray, segments: dict[str, np.ndarray], ks: Sequence[int]) -> dict[str, float]:
    """HR@k and NDCG@k of the predictions in each segment (a boolean mask aligned with ``ranks``).

    An empty segment reports only ``n:<name>`` = 0: there is nothing to average (not a zero score)."""
    r = np.asarray(ranks, dtype=np.float64)
    out: dict[str, float] = {}
    for name, mask in segments.items():
        m = np.asarray(mask, dtype=bool)
        if len(m) != len(r):
            raise ValueError(f"segment {name!r}: {len(m)} labels for {len(r)} predictions")
        sub = r[m]
        out[f"n:{name}"] = float(len(sub))
        if not len(sub):
            continue
        for k in ks:
            hit = sub <= k
            out[f"HR:{name}@{k}"] = float(hit.mean())
            out[f"NDCG:{name}@{k}"] = float(np.where(hit, 1.0 / np.log2(sub + 1.0), 0.0).mean())
    return out


def session_predictions(sessions: Sessions) -> tuple[np.ndarray, np.ndarray]:
    """``(target item, prefix length)`` of every prediction, in the order ``evaluate_sessions`` ranks
    them: session by session, the prefix of t events predicting event t+1."""
    lengths = sessions.lengths
    n_pred = np.maximum(lengths - 1, 0)
    keep = np.ones(len(sessions.items), dtype=bool)
    keep[sessions.offsets[1:][lengths > 0] - 1] = False  # a session's last event predicts nothing
    targets_at = np.flatnonzero(keep) + 1
    starts = np.repeat(sessions.offsets[:-1], n_pred)
    return sessions.items[targets_at], targets_at - starts


def length_segments(prefix_lengths: np.ndarray) -> dict[str, np.ndarray]:
    out = {}
    for lo, hi in LENGTH_BUCKETS:
        label = f"len:{lo}+" if hi is None else (f"len:{lo}" if lo == hi else f"len:{lo}-{hi}")
        out[label] = (prefix_lengths >= lo) & (prefix_lengths <= (hi if hi is not None else np.iinfo(np.int64).max))
    return out


def target_segments(target_items: np.ndarray, train_counts: np.ndarray) -> dict[str, np.ndarray]:
    head = head_items(train_counts)
    t = np.asarray(target_items, dtype=np.int64)
    in_head = np.zeros(len(t), dtype=bool)
    known = t < len(head)
    in_head[known] = head[t[known]]
    return {"head": in_head, "tail": ~in_head}


def user_segments(targets: UserTargets) -> dict[str, np.ndarray]:
    seen = np.diff(sp.csr_matrix(targets.history).indptr)
    return {"returning": seen > NEW_USER_MAX_HISTORY, "new": seen <= NEW_USER_MAX_HISTORY}


# --------------------------------------------------------------------------- recording the runner's lists


class ListRecorder:
    """Stands in for a model during one run of the protocol runner: returns the model's scores
    unchanged and feeds each prediction's top-k list to a :class:`ListFigures`, so beyond-accuracy
    figures come from the very pass that computes HR / NDCG (no second scoring, no second runner).

    ``exclude`` (user protocols): the runner's exclusion rows, aligned with the predictions in the
    order the runner scores them; the recorder walks them with a cursor and checks the alignment.
    """

    def __init__(self, model: Any, figures: ListFigures, exclude: sp.csr_matrix | None = None,
                 users: np.ndarray | None = None) -> None:
        self.model = model
        self.figures = figures
        self.n_items = model.n_items
        self.device = getattr(model, "device", torch.device("cpu"))
        self._exclude = None if exclude is None else sp.csr_matrix(exclude)
        self._users = users
        self._row = 0

    def _record(self, scores: torch.Tensor) -> None:
        s = torch.nan_to_num(scores.detach().float(), nan=-math.inf)
        if self._exclude is not None:
            block = self._exclude[self._row : self._row + s.shape[0]]
            coo = block.tocoo()
            keep = coo.col < s.shape[1]
            rows = torch.from_numpy(coo.row[keep].astype(np.int64)).to(s.device)
            cols = torch.from_numpy(coo.col[keep].astype(np.int64)).to(s.device)
            s[rows, cols] = -math.inf
        self._row += s.shape[0]
        k = min(max(self.figures.ks), s.shape[1])
        val, idx = torch.topk(s, k, dim=1)
        top = torch.where(torch.isfinite(val), idx, torch.full_like(idx, -1))
        self.figures.add(top.cpu().numpy())

    def score_next(self, sessions: Sessions) -> torch.Tensor:
        scores = self.model.score_next(sessions)
        keep = np.ones(len(sessions.items), dtype=bool)
        keep[sessions.offsets[1:][sessions.lengths > 0] - 1] = False
        self._record(scores[torch.from_numpy(np.flatnonzero(keep)).to(scores.device)])
        return scores

    def score_last(self, sessions: Sessions) -> torch.Tensor:
        scores = self.model.score_last(sessions)
        self._record(scores)
        return scores

    def score_users(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        if self._users is not None and not np.array_equal(users, self._users[self._row : self._row + len(users)]):
            raise RuntimeError("ListRecorder: the runner scored users out of the targets' order")
        scores = self.model.score_users(users, history)
        self._record(scores)
        return scores


# ------------------------------------------------------------------------------------ entry points


def _widen(train_counts: np.ndarray, model: Any) -> np.ndarray:
    """Counts over every item the runner ranks (a model may know items the training data lacks)."""
    width = max(len(train_counts), int(getattr(model, "n_items", 0) or 0))
    return np.pad(np.asarray(train_counts, dtype=np.int64), (0, width - len(train_counts)))


def _merge(result: dict, figures: ListFigures, segments: dict[str, np.ndarray], ks: Sequence[int]) -> dict:
    ranks = result.pop("ranks")
    beyond = figures.result() | segment_figures(ranks, segments, ks)
    return result | {"metrics": result["metrics"] | beyond}


def evaluate_sessions_beyond(model: SessionRecommender, test: Sessions, train_counts: np.ndarray,
                             ks: Sequence[int] = (10, 20), **runner: Any) -> dict:
    """``evaluate_sessions`` (``runner``: its chunking arguments) plus the beyond-accuracy and segment figures in ``metrics``."""
    train_counts = _widen(train_counts, model)
    figures = ListFigures(train_counts, ks)
    result = evaluate_sessions(ListRecorder(model, figures), test, ks=ks, return_ranks=True, **runner)  # type: ignore[arg-type]
    targets, prefix = session_predictions(test)
    return _merge(result, figures, target_segments(targets, train_counts) | length_segments(prefix), ks)


def evaluate_users_beyond(model: UserRecommender, targets: UserTargets, train_counts: np.ndarray,
                          ks: Sequence[int] = (10, 20), **runner: Any) -> dict:
    """``evaluate_users`` (``runner``: its chunking arguments) plus the beyond-accuracy and segment figures in ``metrics``."""
    train_counts = _widen(train_counts, model)
    figures = ListFigures(train_counts, ks)
    recorder = ListRecorder(model, figures, exclude=targets.exclude, users=targets.users)
    result = evaluate_users(recorder, targets, ks=ks, return_ranks=True, **runner)  # type: ignore[arg-type]
    segments = target_segments(targets.targets, train_counts) | user_segments(targets)
    return _merge(result, figures, segments, ks)


def evaluate_user_sequences_beyond(model: SessionRecommender, sequences: Sessions, targets: UserTargets,
                                   train_counts: np.ndarray, ks: Sequence[int] = (10, 20),
                                   **runner: Any) -> dict:
    """``evaluate_user_sequences`` (``runner``: its chunking arguments) plus the beyond-accuracy and segment figures in ``metrics``."""
    train_counts = _widen(train_counts, model)
    figures = ListFigures(train_counts, ks)
    recorder = ListRecorder(model, figures, exclude=targets.exclude)
    result = evaluate_user_sequences(recorder, sequences, targets, ks=ks, return_ranks=True, **runner)  # type: ignore[arg-type]
    segments = target_segments(targets.targets, train_counts) | user_segments(targets)
    return _merge(result, figures, segments, ks)
