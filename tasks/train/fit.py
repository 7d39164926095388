"""Train one model of a night from its bundle: fit, P4 figures, checkpoint, candidate recommendations.

Reads only the bundle folder and writes only the checkpoint and ``<bundle>/out/<model>/``, so it can
run on a GPU worker elsewhere. Returns a small JSON-able dict that the flow records in the warehouse.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recmodels.base import SessionRecommender, UserRecommender
from recmodels.checkpoint import CheckpointError
from recmodels.protocols import evaluate_sessions, evaluate_similarity, evaluate_users, session_pairs
from recmodels.registry import create, model_class
from recmodels.similarity import cosine_topk
from recmodels.topk import session_topk
from tasks.common.faults import crash_point
from tasks.features.bundle import (
    bundle_meta,
    load_bundle_matrix,
    load_bundle_sessions,
    load_bundle_targets,
)
from tasks.train.refit import EPOCH_KEYS, refit_params, trainable

# Early stopping on fewer validation predictions than this is noise (e.g. the one anonymous session
# that spans midnight into D-1): train a fixed budget instead.
MIN_VALID_PREDICTIONS = 50


def _version(model: str, meta: dict, params: dict, seed: int) -> str:
    h = hashlib.sha256(json.dumps([model, meta["fingerprint"], params, seed], sort_keys=True).encode())
    return f"{meta['run_date'].replace('-', '')}-{h.hexdigest()[:8]}"


def _metrics_rows(protocol: str, result: dict) -> list[dict]:
    rows = [{"protocol": protocol, "metric": "n_predictions", "k": None, "value": float(result["n_predictions"])}]
    for key, value in result["metrics"].items():
        metric, k = key.split("@")
        rows.append({"protocol": protocol, "metric": metric, "k": int(k), "value": float(value)})
    return rows


def _fit(name: str, params: dict, device: str | None, seed: int, train, full, valid, has_valid: bool,
         refit_full: bool, warm: dict | None, notes: list[str]):
    """Early stopping on the validation days before D, then (``refit_full``) the best epoch count again
    on every day < D. Models without epochs (baselines) and nights without enough validation train
    once on every day < D.

    ``warm`` ({"version", "checkpoint", "max_epochs"}): start both fits from that checkpoint with the
    epoch budget capped; a checkpoint that cannot be trusted is noted and the model trains from scratch."""
    model = create(name, config=params or None, device=device, seed=seed)
    if warm and trainable(model):
        cfg = model.config_dict()
        budget = {k: min(int(cfg[k]), int(warm["max_epochs"])) for k in (*EPOCH_KEYS, "finetune_epochs") if k in cfg}
        try:
            return (*_fit_once(name, {**params, **budget}, device, seed, train, full, valid, has_valid,
                               refit_full, warm["checkpoint"]), warm["version"])
        except CheckpointError as exc:
            notes.append(f"{name}: warm start refused, trained from scratch: {exc}")
    return (*_fit_once(name, params, device, seed, train, full, valid, has_valid, refit_full, None), None)


def _fit_once(name: str, params: dict, device: str | None, seed: int, train, full, valid, has_valid: bool,
              refit_full: bool, warm_dir: str | None):
    def make(p: dict):
        m = create(name, config=p or None, device=device, seed=seed)
        if warm_dir is not None:
            m.warm_start_from(warm_dir)
        return m

    model = make(params)
    if not (trainable(model) and has_valid):
        return model, model.fit(full, None)
    report = model.fit(train, valid)
    refit = None
    if refit_full:
        refit = refit_params(params, model, report.best_epoch)  # NeuMF's phases: its refit_config hook
    if refit is None:
        return model, report
    final = make(refit)
    final_report = final.fit(full, None)
    final_report.valid_metrics = report.valid_metrics  # the figures that chose the epoch count
    final_report.best_epoch = report.best_epoch
    return final, final_report


def _p4_rows(model, family: str, bundle: Path, similar: tuple[np.ndarray, np.ndarray] | None = None) -> list[dict]:
    """P4 figures of ``model`` on the bundle's test day D: next-item for session models, top-N for user
    models, plus the item-similarity table for autoencoders (``similar``: the table already built,
    otherwise a top-20 one is built here)."""
    rows: list[dict] = []
    if family == "session":
        test = load_bundle_sessions(bundle, "sessions_test")
        if test.n_sessions:
            rows += _metrics_rows("P4-session", evaluate_sessions(model, test, ks=(10, 20)))
        return rows
    test_users = load_bundle_targets(bundle, "users_test")
    if len(test_users.users):
        rows += _metrics_rows("P4-user", evaluate_users(model, test_users, ks=(10, 20)))
    stest = load_bundle_sessions(bundle, "sessions_test")
    if family == "autoencoder" and stest.n_sessions:
        if similar is None:
            sim_idx, sim_val = cosine_topk(model.item_vectors().detach().float(), k=20)
            similar = (sim_idx.cpu().numpy(), sim_val.cpu().numpy())
        src, tgt = session_pairs(stest)
        rows += _metrics_rows("P4-similar", evaluate_similarity(*similar, src, tgt, ks=(10, 20)))
    return rows


def _rescore_champion(champion: dict | None, model_name: str, family: str, bundle: Path, device: str | None,
                      notes: list[str]) -> dict | None:
    """The published champion's P4 figures on tonight's test day D, so the gate compares two models on
    the same day rather than on two different days. Its checkpoint is grown to tonight's vocabulary
    (indices are never reassigned). Models without a loadable checkpoint (baselines) return None and
    the gate falls back to the champion's stored figure; so does an untrustworthy checkpoint (noted)."""
    cls = model_class(model_name)
    if not champion or not champion.get("checkpoint") or not hasattr(cls, "load"):
        return None
    try:
        if family == "session":
            n_items = load_bundle_sessions(bundle, "sessions_test").n_items
            model = cls.load(champion["checkpoint"], n_items=n_items, device=device)
        else:
            full = load_bundle_matrix(bundle, "users_train_full")
            model = cls.load(champion["checkpoint"], n_items=full.n_items, n_users=full.n_users, device=device)
        rows = _p4_rows(model, family, bundle)
    except CheckpointError as exc:
        notes.append(f"{model_name}: champion {champion['version']} not re-scored, its stored figure is used: {exc}")
        return None
    return {"version": champion["version"], "metrics": rows}


def train_one(
    bundle: Path,
    model_name: str,
    family: str,
    models_dir: Path,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    device: str | None = None,
    refit_full: bool = True,
    top_n: int = 20,
    similar_k: int = 50,
    label: str | None = None,
    warm: dict | None = None,
) -> dict:
    """``family``: "session" (next-item), "user" (top-N) or "autoencoder" (top-N + item similarity).

    ``label`` names the model in the warehouse when one registry model serves two families
    (``pop`` for sessions and ``pop-user`` for users). ``warm``: see ``_fit``.
    """
    label = label or model_name
    bundle = Path(bundle)
    meta = bundle_meta(bundle)
    params = dict(params or {})
    out = bundle / "out" / label
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    notes: list[str] = []

    if family == "session":
        train, valid = load_bundle_sessions(bundle, "sessions_train"), load_bundle_sessions(bundle, "sessions_valid")
        full = load_bundle_sessions(bundle, "sessions_train_full")
        model, report, warm_from = _fit(model_name, params, device, seed, train, full, valid,
                                        len(valid.items) - valid.n_sessions >= MIN_VALID_PREDICTIONS,
                                        refit_full, warm, notes)
        assert isinstance(model, SessionRecommender)
        train_s = time.perf_counter() - t0
        rows = _p4_rows(model, family, bundle)
        night = load_bundle_sessions(bundle, "sessions_night")
        idx, val = session_topk(model, night, k=top_n)
        np.savez(out / "session_next.npz", entity_ids=np.asarray(night.session_ids, dtype=str), item_idx=idx, scores=val)
    else:
        train = load_bundle_matrix(bundle, "users_train")
        full = load_bundle_matrix(bundle, "users_train_full")
        valid = load_bundle_targets(bundle, "users_valid")
        model, report, warm_from = _fit(model_name, params, device, seed, train, full, valid,
                                        len(valid.users) >= MIN_VALID_PREDICTIONS, refit_full, warm, notes)
        assert isinstance(model, UserRecommender)
        train_s = time.perf_counter() - t0
        if meta["has_user_ids"] and meta["entity"] == "user":
            from recmodels.user_training import topn_users

            users = np.flatnonzero(np.diff(full.matrix.indptr) > 0)
            history = full.matrix[users]
            idx, val = topn_users(model, users, history, history, top_n)
            user_ids = np.load(bundle / "user_ids.npy", allow_pickle=False)
            np.savez(out / "user_topn.npz", entity_ids=user_ids[users], item_idx=idx.numpy(), scores=val.numpy())
        else:
            notes.append("recs.user_topn not produced: the source has no user ids (sessions stand in for users)")
        vectors = model.item_vectors() if family == "autoencoder" else None
        similar = None
        if vectors is not None:
            sim_idx, sim_val = cosine_topk(vectors.detach().float(), k=similar_k)
            sim_idx, sim_val = sim_idx.cpu().numpy(), sim_val.cpu().numpy()
            similar = (sim_idx, sim_val)
            np.savez(out / "item_similar.npz", entity_ids=np.arange(len(sim_idx)), item_idx=sim_idx, scores=sim_val)
            svalid = load_bundle_sessions(bundle, "sessions_valid")
            if svalid.n_sessions:  # the autoencoders are compared on the validation day, not the test day
                src, tgt = session_pairs(svalid)
                sim_valid = evaluate_similarity(sim_idx, sim_val, src, tgt, ks=(20,))
                report.valid_metrics = {**report.valid_metrics, **{f"sim_{k}": v for k, v in sim_valid["metrics"].items()}}
        rows = _p4_rows(model, family, bundle, similar)

    champion = _rescore_champion((meta.get("champions") or {}).get(label), model_name, family, bundle, device, notes)
    crash_point("train-after-fit")
    version = _version(label, meta, params | ({"warm_start_from": warm_from} if warm_from else {}), seed)
    ckpt = models_dir / label / version
    try:
        model.save(ckpt, extra_meta={"run_date": meta["run_date"], "fit": report.to_dict(), "metrics": rows})
        ckpt_path = str(ckpt)
    except (RuntimeError, OSError, TypeError) as exc:  # baselines without tensors still record their run
        ckpt_path = None
        notes.append(f"no checkpoint: {exc}")
    result = {
        "model": label,
        "registry_name": model_name,
        "family": family,
        "version": version,
        "params": model.config_dict(),
        "device": str(model.device),
        "train_seconds": round(train_s, 3),
        "fit": {k: v for k, v in report.to_dict().items() if k != "history"},
        "metrics": rows,
        "checkpoint_path": ckpt_path,
        "outputs": {p.stem: str(p) for p in out.glob("*.npz")},
        "notes": notes,
        "warm_start_from": warm_from,
        "champion_on_test": champion,  # the published champion re-scored on D (None: use its stored figure)
    }
    (out / "result.json").write_text(json.dumps(result, indent=2, default=str))
    return result
