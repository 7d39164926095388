"""A peer measured in the same run: RecBole's own training epoch on the same ml-100k split.

``clickrec bench train --model multvae|neumf --peer recbole`` runs this module in a child process
(same ``OMP_NUM_THREADS``, same machine, same minute) and reports our epoch time against RecBole's.
RecBole is not a dependency of clickrec: install it beside the project to compare
(``pip install recbole==1.2.1 colorlog==4.7.2 colorama==0.4.4 scikit-learn tensorboard thop tabulate
plotly texttable psutil``; its ``ray`` import is only for hyper-parameter search, so a stub stands in
for it here, and NumPy 2 lost aliases that RecBole 1.2 still touches, restored here before import).

The split is RecBole's leave-last-out in time order (``LS: valid_and_test``, ``order: TO``), which is
P2's: 98,114 training interactions on ml-100k. RecBole's model defaults are used as they are; pass
the same values to our side with ``--param`` (the README gives the commands).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PEER_MODELS = {"multvae": "MultiVAE", "neumf": "NeuMF"}


def recbole_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("recbole") is not None


def peer_epoch_seconds(model: str, data_dir: Path, epochs: int = 5) -> dict[str, Any]:
    """RecBole's median seconds per training epoch of ``model``, measured in a child process."""
    if model not in PEER_MODELS:
        raise ValueError(f"--peer recbole compares {sorted(PEER_MODELS)}, not {model!r}")
    if not recbole_available():
        raise ValueError("--peer recbole: RecBole is not installed here (see tasks/tools/bench_peer.py for the pip line)")
    cmd = [sys.executable, "-m", "tasks.tools.bench_peer", PEER_MODELS[model], str(Path(data_dir).resolve()), str(epochs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ValueError(f"--peer recbole: RecBole run failed: {last}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _shim_numpy() -> None:
    import numpy as np

    for alias, target in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if not hasattr(np, alias):
            setattr(np, alias, target)


def _run(name: str, data_dir: str, epochs: int, workdir: str) -> dict[str, Any]:
    import types

    _shim_numpy()
    sys.modules.setdefault("ray", types.ModuleType("ray"))
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import MultiVAE, NeuMF
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    cfg: dict[str, Any] = {
        "data_path": data_dir,
        "dataset": "ml-100k",
        "device": "cpu",
        "use_gpu": False,
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "train_batch_size": 2048,
        "show_progress": False,
        "checkpoint_dir": str(Path(workdir) / "saved"),
        "worker": 0,
        "train_neg_sample_args": None,
    }
    if name == "NeuMF":
        cfg["train_neg_sample_args"] = {"distribution": "uniform", "sample_num": 1, "alpha": 1.0,
                                        "dynamic": False, "candidate_num": 0}
    config = Config(model=name, config_dict=cfg)
    init_seed(config["seed"], config["reproducibility"])
    train_data, _, _ = data_preparation(config, create_dataset(config))
    model = {"MultiVAE": MultiVAE, "NeuMF": NeuMF}[name](config, train_data._dataset)
    trainer = Trainer(config, model)
    seconds = []
    for epoch in range(epochs + 1):  # the first epoch warms the allocator and imports: dropped
        t0 = time.perf_counter()
        trainer._train_epoch(train_data, epoch, show_progress=False)
        seconds.append(time.perf_counter() - t0)
    timed = sorted(seconds[1:])
    keys = ("latent_dimension", "mlp_hidden_size", "dropout_prob", "anneal_cap", "total_anneal_steps",
            "mf_embedding_size", "mlp_embedding_size", "train_batch_size", "learning_rate")
    return {
        "library": "recbole",
        "model": name,
        "train_interactions": len(train_data.dataset),
        "threads": torch.get_num_threads(),
        "epoch_seconds": timed[len(timed) // 2],
        "epoch_seconds_all": seconds[1:],
        "config": {k: config[k] for k in keys if k in config.final_config_dict},
    }


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="clickrec-recbole-") as tmp:
        os.chdir(tmp)  # RecBole writes log/ and saved/ under the working directory
        print(json.dumps(_run(sys.argv[1], sys.argv[2], int(sys.argv[3]), tmp)))
