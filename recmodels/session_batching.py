"""Mini-batch layouts for the session models: GRU4Rec's session-parallel batches and NARM's padded prefixes.

Session-parallel mini-batches (Hidasi et al., ICLR 2016, Sec. 3.1.1): ``batch_size`` slots each play
one session event by event; at every step the slots feed their current event and predict the next
one; when a slot's session ends, the next session (in order of start time) takes the slot and the
slot's hidden state is reset to zero. The whole epoch's layout is computed up front (vectorised,
plus a heap over *sessions*, never over events) so that the training step loop only slices arrays.

Padded prefixes (NARM, Li et al., CIKM 2017): every prefix of a session is one training example. A
causal encoder produces all prefixes of a session in one pass, so a batch is a set of whole
sessions padded to a common length; batches are built from sessions of similar length (less
padding) and have about ``batch_targets`` predictions each.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class ParallelSchedule:
    """One epoch of session-parallel steps.

    ``inputs[t, b]`` is the index (into ``Sessions.items``) of the event slot ``b`` feeds at step ``t``;
    its target is event ``inputs[t, b] + 1`` (same session). ``-1`` marks an idle slot (only at the end
    of the epoch, when no session is left to start). ``reset[t, b]`` is True when a new session starts
    in slot ``b`` at step ``t``: its hidden state must be zeroed before the step.
    """

    inputs: np.ndarray  # int64 [n_steps, batch_size]
    reset: np.ndarray  # bool [n_steps, batch_size]

    @property
    def n_steps(self) -> int:
        return self.inputs.shape[0]

    @property
    def batch_size(self) -> int:
        return self.inputs.shape[1]

    @property
    def valid(self) -> np.ndarray:
        return self.inputs >= 0

    @property
    def targets(self) -> np.ndarray:
        """Event index of each slot's target, -1 for idle slots."""
        return np.where(self.inputs >= 0, self.inputs + 1, -1)

    @property
    def n_events(self) -> int:
        """Training events (= predictions) in the epoch."""
        return int(self.valid.sum())


def session_order(offsets: np.ndarray, times: np.ndarray | None) -> np.ndarray:
    """Sessions by start time (stable), as the official GRU4Rec iterator orders them; file order without times."""
    n = len(offsets) - 1
    if times is None or n == 0:
        return np.arange(n, dtype=np.int64)
    return np.argsort(times[offsets[:-1]], kind="stable").astype(np.int64)


def session_parallel_schedule(
    offsets: np.ndarray, batch_size: int, order: np.ndarray | None = None
) -> ParallelSchedule:
    """Lay out sessions (in ``order``) on ``batch_size`` parallel slots; sessions with < 2 events are skipped.

    A session of length L occupies its slot for L - 1 steps. A freed slot takes the next session;
    when several slots free up at the same step, the lowest slot takes the earliest session (the
    official implementation's order).
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    order = np.arange(len(lengths), dtype=np.int64) if order is None else np.asarray(order, dtype=np.int64)
    order = order[lengths[order] >= 2]
    steps = lengths[order] - 1
    n = len(order)
    if n == 0:
        return ParallelSchedule(np.zeros((0, batch_size), np.int64), np.zeros((0, batch_size), bool))
    start = np.empty(n, dtype=np.int64)
    slot = np.empty(n, dtype=np.int64)
    # List scheduling is inherently sequential; this loop is over sessions (cheap ints), not events.
    heap = [(0, b) for b in range(batch_size)]
    steps_list = steps.tolist()
    for k in range(n):
        t, b = heapq.heappop(heap)
        start[k] = t
        slot[k] = b
        heapq.heappush(heap, (t + steps_list[k], b))
    n_steps = int((start + steps).max())
    inputs = np.full((n_steps, batch_size), -1, dtype=np.int64)
    reset = np.zeros((n_steps, batch_size), dtype=bool)
    # Expand every session into its (step, slot, event) triples, vectorised.
    total = int(steps.sum())
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(steps) - steps, steps)
    step_idx = np.repeat(start, steps) + within
    slot_idx = np.repeat(slot, steps)
    inputs[step_idx, slot_idx] = np.repeat(offsets[order], steps) + within
    reset[start, slot] = True
    return ParallelSchedule(inputs=inputs, reset=reset)


def pad_sessions(
    items: np.ndarray, offsets: np.ndarray, sel: np.ndarray, pad: int = 0, max_len: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Sessions ``sel`` as a right-padded matrix ``[len(sel), L]`` and their lengths (vectorised).

    ``max_len`` keeps only the *last* ``max_len`` events of longer sessions.
    """
    starts = offsets[sel]
    lengths = offsets[sel + 1] - starts
    if max_len is not None:
        starts = starts + np.maximum(lengths - max_len, 0)
        lengths = np.minimum(lengths, max_len)
    n = len(sel)
    width = int(lengths.max()) if n else 0
    out = np.full((n, width), pad, dtype=np.int64)
    rows = np.repeat(np.arange(n), lengths)
    cols = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[rows, cols] = items[np.repeat(starts, lengths) + cols]
    return out, lengths


def length_bucketed_batches(
    lengths: np.ndarray, batch_targets: int, gen: np.random.Generator, pool_batches: int = 64
) -> list[np.ndarray]:
    """Shuffled batches of session indices with about ``batch_targets`` predictions (length - 1) each.

    Sessions are shuffled, then sorted by length inside pools of ``pool_batches`` batches (so that a
    batch pads little while batches stay random), cut where the running prediction count crosses a
    multiple of ``batch_targets``, and the batches are shuffled. Sessions with < 2 events are dropped.
    """
    idx = np.flatnonzero(lengths >= 2)
    idx = idx[gen.permutation(len(idx))]
    if len(idx) == 0:
        return []
    preds = lengths[idx] - 1
    pool_of = np.cumsum(preds) // (batch_targets * pool_batches)
    # sort by (pool, length): stable lexsort keeps the shuffle inside equal keys
    idx = idx[np.lexsort((lengths[idx], pool_of))]
    preds = lengths[idx] - 1
    batch_of = (np.cumsum(preds) - preds) // batch_targets
    cuts = np.flatnonzero(np.diff(batch_of)) + 1
    batches = np.split(idx, cuts)
    return [batches[i] for i in gen.permutation(len(batches))]


def validation_mrr(model, valid, k: int = 20) -> dict[str, float]:  # noqa: ANN001 - any SessionRecommender
    """Full-ranking HR@k / MRR@k of ``model`` on ``valid`` (every prefix predicts the next click).

    Uses the project's one protocol runner (``recmodels.protocols``, conservative ties via
    ``recmodels.metrics``), so early stopping optimises exactly the figure P1 reports.
    """
    from recmodels.protocols import evaluate_sessions

    return evaluate_sessions(model, valid, ks=(k,))["metrics"]


def known_items(items: torch.Tensor, n_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(``items`` clamped into the vocabulary, mask of items the model knows): unknown ids never index out of range."""
    known = (items >= 0) & (items < n_items)
    return torch.where(known, items, torch.zeros_like(items)), known
