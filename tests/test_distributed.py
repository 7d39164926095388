"""DDP training of Mult-DAE / Mult-VAE: 2 gloo processes reproduce the 1-process run step by step.

Dropout is 0 in the equality test: input dropout draws from each process's own RNG, so with it a
2-process run is a different random draw than a 1-process run (not a bug, but not comparable number
by number). Without it the forward pass is deterministic and, with the global batch split across
the ranks and each rank's mean weighted by its share, DDP's averaged gradient is the single-process
gradient; only float summation order differs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recmodels.autoencoders import MultDAE
from recmodels.data import Interactions
from recmodels.distributed import shard, train_mult_ddp
from tasks.tools.train_ddp import launch_local, main, synthetic_matrix

N_USERS, N_ITEMS, EMPTY_USERS = 200, 100, 4


@pytest.fixture(scope="module")
def train() -> Interactions:
    m = synthetic_matrix(N_USERS, N_ITEMS, per_user=15, seed=3).tolil()
    m[:EMPTY_USERS] = 0  # users without history are skipped by the model: 196 active users
    return Interactions(sp.csr_matrix(m))


# 196 active users / 65 = 65, 65, 65, 1: odd batches split 33/32, and rank 1's last shard is empty,
# so the test covers the uneven and the empty shard as well as the even case.
DAE_CONFIG = {"hidden": (32,), "latent": 16, "dropout": 0.0, "batch_size": 65, "epochs": 3, "lr": 1e-2}


def test_shard_is_a_partition_of_the_batch() -> None:
    batch = torch.randperm(11)
    parts = [shard(batch, r, 3) for r in range(3)]
    assert sorted(torch.cat(parts).tolist()) == sorted(batch.tolist())
    assert [len(p) for p in parts] == [4, 4, 3]


def test_single_process_equals_model_fit(train: Interactions) -> None:
    """Without a process group the DDP trainer is MultDAE.fit (same init, batches, loss, Adam)."""
    ref = train_mult_ddp(train, "multdae", DAE_CONFIG, seed=7)
    fitted = MultDAE(config=DAE_CONFIG, device="cpu", seed=7)
    report = fitted.fit(train)
    for k, v in fitted.module.state_dict().items():
        torch.testing.assert_close(ref.state[k], v, rtol=0, atol=0, msg=k)
    np.testing.assert_allclose(ref.epoch_losses(4), [row["loss"] for row in report.history], rtol=1e-6)


def test_two_gloo_processes_match_one_process(train: Interactions) -> None:
    ref = train_mult_ddp(train, "multdae", DAE_CONFIG, seed=7)
    ddp = launch_local(train, "multdae", DAE_CONFIG, nproc=2, seed=7, backend="gloo")

    assert ddp.world_size == 2 and ref.world_size == 1
    assert ddp.batch_sizes == ref.batch_sizes == [65, 65, 65, 1] * 3
    assert ref.losses[-1] < ref.losses[0]  # it trained: the comparison is not between two constants
    np.testing.assert_allclose(ddp.losses, ref.losses, rtol=1e-4)
    assert ddp.max_weight_diff == 0.0  # replicas bit-identical at the end
    for k, v in ref.state.items():
        torch.testing.assert_close(ddp.state[k], v, rtol=1e-4, atol=1e-5, msg=k)
    # the rebuilt model scores like the single-process one
    users = np.arange(EMPTY_USERS, 20)
    torch.testing.assert_close(
        ddp.model.score_users(users, train.matrix[users]),
        ref.model.score_users(users, train.matrix[users]),
        rtol=1e-4,
        atol=1e-4,
    )


def test_vae_with_dropout_stays_in_sync(train: Interactions) -> None:
    """With noise (dropout, VAE sampling) the ranks draw differently, yet the replicas stay identical."""
    cfg = {
        "hidden": (32,),
        "latent": 16,
        "dropout": 0.5,
        "batch_size": 64,
        "epochs": 2,
        "total_anneal_steps": 4,
    }
    res = launch_local(train, "multvae", cfg, nproc=2, seed=1, backend="gloo")
    assert res.max_weight_diff == 0.0
    assert len(res.losses) == 2 * math.ceil((N_USERS - EMPTY_USERS) / 64)
    assert all(math.isfinite(v) for v in res.losses)


def test_unknown_model_rejected(train: Interactions) -> None:
    with pytest.raises(ValueError, match="DDP training supports"):
        train_mult_ddp(train, "cdae", {})


def test_cli_help_documents_torchrun(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "torchrun" in out and "--nproc" in out and "--batch-size" in out
