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

from recmodels.base import FitReport, SessionRecommender, TrainedModel, UserRecommender
from recmodels.beyond import evaluate_sessions_beyond, evaluate_users_beyond, item_counts
from recmodels.checkpoint import CheckpointError
from recmodels.protocols import evaluate_similarity, session_pairs
from recmodels.registry import create, model_class
from recmodels.similarity import cosine_topk
from recmodels.topk import session_topk
from recmodels.trainer import EpochProgress, Progress, fit_with_refit
from tasks.common.faults import crash_point
from tasks.common.models import MIN_VALID_PREDICTIONS, P4_SESSION, P4_SIMILAR, P4_USER
from tasks.common.progress import progress
from tasks.features.bundle import (
    bundle_meta,
    load_bundle_matrix,
    load_bundle_sessions,
    load_bundle_targets,
)
from tasks.train.size_defaults import size_defaults


def _version(model: str, meta: dict, params: dict, seed: int) -> str:
    h = hashlib.sha256(json.dumps([model, meta["fingerprint"], params, seed], sort_keys=True).encode())
    return f"{meta['run_date'].replace('-', '')}-{h.hexdigest()[:8]}"


def _metrics_rows(protocol: str, result: dict) -> list[dict]:
    rows = [{"protocol": protocol, "metric": "n_predictions", "k": None, "value": float(result["n_predictions"])}]
    for key, value in result["metrics"].items():
        metric, _, k = key.partition("@")  # "HR@20", "HR:head@20"; "n:head" (a segment's size) has no k
        rows.append({"protocol": protocol, "metric": metric, "k": int(k) if k else None, "value": float(value)})
    return rows


def epoch_logger() -> Progress:
    """The Trainer's progress callback: one plain line per epoch, e.g. ``gru4rec epoch 3/10 loss 4.2104
    valid MRR@20 0.3120 (12 s, ~84 s left)``, as every progress line (tasks.common.progress)."""

    def log_epoch(p: EpochProgress) -> None:
        progress(p.line())

    return log_epoch


def _fit(name: str, params: dict, device: str | None, seed: int, train, full, valid, has_valid: bool,
         refit_full: bool, warm: dict | None, notes: list[str]):
    """Early stopping on the validation days before D, then (``refit_full``) the best epoch count again
    on every day < D. Models without epochs (baselines) and nights without enough validation train
    once on every day < D.

    ``warm`` ({"version", "checkpoint", "max_epochs"}): start both fits from that checkpoint with the
    epoch budget capped; a checkpoint that cannot be trusted is noted and the model trains from scratch."""
    model = create(name, config=params or None, device=device, seed=seed)
    if not isinstance(model, TrainedModel):
        return model, model.fit(full, None), None
    progress = epoch_logger()
    if warm:
        cfg = model.config_dict()
        budget = {k: min(int(cfg[k]), int(warm["max_epochs"])) for k in ("epochs", "finetune_epochs") if k in cfg}
        try:
            return (*_fit_once(name, {**params, **budget}, device, seed, train, full, valid, has_valid,
                               refit_full, warm["checkpoint"], progress), warm["version"])
        except CheckpointError as exc:
            notes.append(f"{name}: warm start refused, trained from scratch: {exc}")
    return (*_fit_once(name, params, device, seed, train, full, valid, has_valid, refit_full, None, progress), None)


def _fit_once(name: str, params: dict, device: str | None, seed: int, train, full, valid, has_valid: bool,
              refit_full: bool, warm_dir: str | None, progress: Progress | None = None):
    def make(p: dict) -> TrainedModel:
        return create(name, config=p or None, device=device, seed=seed)

    if not has_valid:
        model = make(params)
        return model, model.fit(full, None, progress=progress, warm_from=warm_dir)
    return fit_with_refit(make, params, train, valid, full, refit=refit_full, progress=progress, warm_from=warm_dir)


def _p4_rows(model, family: str, bundle: Path, similar: tuple[np.ndarray, np.ndarray] | None = None) -> list[dict]:
    """P4 figures of ``model`` on the bundle's test day D: next-item for session models, top-N for user
    models, plus the item-similarity table for autoencoders (``similar``: the table already built,
    otherwise a top-20 one is built here)."""
    rows: list[dict] = []
    if family == "session":
        test = load_bundle_sessions(bundle, "sessions_test")
        if test.n_sessions:
            counts = item_counts(load_bundle_sessions(bundle, "sessions_train_full"), test.n_items)
            rows += _metrics_rows(P4_SESSION, evaluate_sessions_beyond(model, test, counts, ks=(10, 20)))
        return rows
    test_users = load_bundle_targets(bundle, "users_test")
    if len(test_users.users):
        counts = item_counts(load_bundle_matrix(bundle, "users_train_full"), test_users.exclude.shape[1])
        rows += _metrics_rows(P4_USER, evaluate_users_beyond(model, test_users, counts, ks=(10, 20)))
    stest = load_bundle_sessions(bundle, "sessions_test")
    if family == "autoencoder" and stest.n_sessions:
        if similar is None:
            sim_idx, sim_val = cosine_topk(model.item_vectors().detach().float(), k=20)
            similar = (sim_idx.cpu().numpy(), sim_val.cpu().numpy())
        src, tgt = session_pairs(stest)
        rows += _metrics_rows(P4_SIMILAR, evaluate_similarity(*similar, src, tgt, ks=(10, 20)))
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


def _write_user_topn(model: UserRecommender, full, bundle: Path, out: Path, top_n: int) -> None:
    """Candidates ``user_topn.npz``: every user with a history, their seen items excluded."""
    from recmodels.user_training import topn_users

    users = np.flatnonzero(np.diff(full.matrix.indptr) > 0)
    history = full.matrix[users]
    idx, val = topn_users(model, users, history, history, top_n)
    user_ids = np.load(bundle / "user_ids.npy", allow_pickle=False)
    np.savez(out / "user_topn.npz", entity_ids=user_ids[users], item_idx=idx.numpy(), scores=val.numpy())


def _write_similar(model: UserRecommender, bundle: Path, out: Path, similar_k: int, report: FitReport):
    """Candidates ``item_similar.npz`` from the model's item vectors (None when it has none), and their
    figures on the validation day in ``report.valid_metrics`` (``sim_*``: the autoencoders are compared
    on the validation day, not the test day)."""
    vectors = model.item_vectors()
    if vectors is None:
        return None
    sim_idx, sim_val = cosine_topk(vectors.detach().float(), k=similar_k)
    sim_idx, sim_val = sim_idx.cpu().numpy(), sim_val.cpu().numpy()
    np.savez(out / "item_similar.npz", entity_ids=np.arange(len(sim_idx)), item_idx=sim_idx, scores=sim_val)
    svalid = load_bundle_sessions(bundle, "sessions_valid")
    if svalid.n_sessions:
        src, tgt = session_pairs(svalid)
        sim_valid = evaluate_similarity(sim_idx, sim_val, src, tgt, ks=(20,))
        report.valid_metrics = {**report.valid_metrics, **{f"sim_{k}": v for k, v in sim_valid["metrics"].items()}}
    return sim_idx, sim_val


def _save(model, ckpt: Path, extra_meta: dict, notes: list[str]) -> str | None:
    """The checkpoint's path, or None (noted) for models without tensors: baselines still record their run."""
    try:
        model.save(ckpt, extra_meta=extra_meta)
    except (RuntimeError, OSError, TypeError) as exc:
        notes.append(f"no checkpoint: {exc}")
        return None
    return str(ckpt)


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
        params = {**size_defaults(model_name, full), **params}  # the night's [night.models.NAME] on top
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
        params = {**size_defaults(model_name, full), **params}  # the night's [night.models.NAME] on top
        valid = load_bundle_targets(bundle, "users_valid")
        model, report, warm_from = _fit(model_name, params, device, seed, train, full, valid,
                                        len(valid.users) >= MIN_VALID_PREDICTIONS, refit_full, warm, notes)
        assert isinstance(model, UserRecommender)
        train_s = time.perf_counter() - t0
        if meta["has_user_ids"] and meta["entity"] == "user":
            _write_user_topn(model, full, bundle, out, top_n)
        else:
            notes.append("no user_topn recommendations: the source has no user ids (sessions stand in for users)")
        similar = _write_similar(model, bundle, out, similar_k, report) if family == "autoencoder" else None
        rows = _p4_rows(model, family, bundle, similar)

    champion = _rescore_champion((meta.get("champions") or {}).get(label), model_name, family, bundle, device, notes)
    crash_point("train-after-fit")
    version = _version(label, meta, params | ({"warm_start_from": warm_from} if warm_from else {}), seed)
    ckpt_path = _save(model, models_dir / label / version, {"run_date": meta["run_date"], "fit": report.to_dict(),
                                                            "metrics": rows}, notes)
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
