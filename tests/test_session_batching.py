"""Session-parallel batcher and padded-prefix helpers (recmodels.session_batching)."""

from __future__ import annotations

import numpy as np
import torch

from recmodels.session_batching import (
    known_items,
    length_bucketed_batches,
    pad_sessions,
    session_order,
    session_parallel_schedule,
)


def test_schedule_on_hand_made_log() -> None:
    # sessions (lengths): s0=3, s1=2, s2=4, s3=1 (nothing to predict: skipped), s4=2
    offsets = np.array([0, 3, 5, 9, 10, 12])
    sched = session_parallel_schedule(offsets, batch_size=2)
    # worked out by hand: slot 1 frees after one step and takes s2; slot 0 frees at step 2, takes s4
    expected_inputs = np.array(
        [
            [0, 3],  # s0 event 0, s1 event 0
            [1, 5],  # s0 event 1, s2 starts (reset)
            [10, 6],  # s4 starts in slot 0 (reset), s2 continues
            [-1, 7],  # no session left for slot 0: idle
        ]
    )
    expected_reset = np.array([[True, True], [False, True], [True, False], [False, False]])
    np.testing.assert_array_equal(sched.inputs, expected_inputs)
    np.testing.assert_array_equal(sched.reset, expected_reset)
    np.testing.assert_array_equal(sched.targets[sched.valid], expected_inputs[sched.valid] + 1)
    assert sched.n_events == 7


def test_schedule_covers_every_event_once_and_resets_exactly_at_session_starts() -> None:
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 9, size=300)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    order = rng.permutation(len(lengths))
    sched = session_parallel_schedule(offsets, batch_size=7, order=order)
    session_of = np.repeat(np.arange(len(lengths)), lengths)
    # every event except each session's last is an input exactly once
    used = sched.inputs[sched.valid]
    expected = np.setdiff1d(np.arange(offsets[-1]), offsets[1:] - 1)
    np.testing.assert_array_equal(np.sort(used), expected)
    assert len(used) == len(expected)
    # target is the next event of the same session
    assert (session_of[used] == session_of[used + 1]).all()
    # inside a slot: a step either continues the previous event or starts a session with a reset
    for b in range(sched.batch_size):
        col = sched.inputs[:, b]
        col = col[col >= 0]
        rs = sched.reset[: len(col), b]
        starts = np.isin(col, offsets[:-1])
        np.testing.assert_array_equal(rs, starts)
        cont = ~starts[1:]
        assert (col[1:][cont] == col[:-1][cont] + 1).all()
    # idle slots only once no session is left, and sessions start in the requested order
    start_steps, start_slots = np.nonzero(sched.reset)
    started = session_of[sched.inputs[start_steps, start_slots]]
    order_kept = order[lengths[order] >= 2]
    np.testing.assert_array_equal(started[np.lexsort((start_slots, start_steps))], order_kept)
    idle_rows = np.flatnonzero((~sched.valid).any(axis=1))
    assert len(idle_rows) > 0  # 300 sessions do not end together on 7 slots
    assert not sched.reset[idle_rows[0] + 1 :].any()
    assert (~sched.valid[idle_rows[0] :]).sum(axis=1).min() >= 1


def test_session_order_by_start_time_is_stable() -> None:
    offsets = np.array([0, 2, 3, 5])
    times = np.array([5.0, 6.0, 1.0, 5.0, 9.0])
    np.testing.assert_array_equal(session_order(offsets, times), [1, 0, 2])
    np.testing.assert_array_equal(session_order(offsets, None), [0, 1, 2])


def test_pad_sessions_and_keep_last() -> None:
    items = np.array([10, 11, 12, 20, 30, 31])
    offsets = np.array([0, 3, 4, 6])
    padded, lengths = pad_sessions(items, offsets, np.array([2, 0]), pad=-1)
    np.testing.assert_array_equal(padded, [[30, 31, -1], [10, 11, 12]])
    np.testing.assert_array_equal(lengths, [2, 3])
    padded, lengths = pad_sessions(items, offsets, np.array([0, 1]), pad=0, max_len=2)
    np.testing.assert_array_equal(padded, [[11, 12], [20, 0]])
    np.testing.assert_array_equal(lengths, [2, 1])


def test_length_bucketed_batches_partition_sessions() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 20, size=1000)
    batches = length_bucketed_batches(
        lengths, batch_targets=100, gen=np.random.default_rng(1), pool_batches=4
    )
    allidx = np.concatenate(batches)
    np.testing.assert_array_equal(np.sort(allidx), np.flatnonzero(lengths >= 2))
    preds = np.array([int((lengths[b] - 1).sum()) for b in batches])
    # every batch but possibly a pool's last stays within one session of the target
    assert (preds <= 100 + 19).all()
    assert np.median(preds) >= 80
    # bucketing: the spread of lengths inside a batch is far smaller than in the whole set
    spread = np.mean([np.ptp(lengths[b]) for b in batches if len(b) > 1])
    assert spread < np.ptp(lengths) / 2


def test_known_items_clamps_unknown_ids() -> None:
    x, known = known_items(torch.tensor([0, 4, 5, 9, -1]), 5)
    assert x.tolist() == [0, 4, 0, 0, 0]
    assert known.tolist() == [True, True, False, False, False]
