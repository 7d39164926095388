"""One protocol run: load the shared split, fit a registered model, score it with the one runner.

Protocols (``../shared/PROTOCOLS.md``):
- ``P1``: rsc15-100k next click. Session models fit on train_full; user models are not accepted.
- ``P2``: ml-100k leave-last-out. User models fit on train (validation targets passed for early
  stopping); session models fit on the per-user train sequences and read train + valid as one
  session at test time.
- ``P3`` / ``P3-rsc15`` / ``P3-ml100k``: item-to-item tables. ``P3`` picks rsc15 for session models
  and ml-100k for user models. The table is the model's ``similar_items(k)`` when it has one,
  otherwise cosine top-k of ``item_vectors()``. Sessions become users (binary session x item rows)
  for user models on rsc15; user sequences become sessions for session models on ml-100k.
P1 / P2 also carry the beyond-accuracy and segment figures of ``recmodels.beyond`` (coverage,
popularity percentile, novelty, long-tail share; HR / NDCG by head / tail target, prefix length, new /
returning user), computed during the same ranking pass.
P4 runs inside the nightly flow with the same runner functions (see ``recmodels.protocols``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recmodels.base import Recommender, SessionRecommender, TrainedModel, UserRecommender
from recmodels.baselines import session_item_matrix
from recmodels.beyond import (
    evaluate_sessions_beyond,
    evaluate_user_sequences_beyond,
    evaluate_users_beyond,
    item_counts,
)
from recmodels.data import Interactions, Sessions
from recmodels.device import seed_everything
from recmodels.protocols import (
    evaluate_similarity,
    session_pairs,
    user_last_pairs,
    user_last_train_pairs,
)
from recmodels.registry import create
from recmodels.similarity import cosine_topk
from tasks.common.models import PROTOCOL_METRICS
from tasks.tools.protocol_data import default_data_dir, load_p1, load_p1_tuning, load_p2

PROTOCOLS = ("P1", "P2", "P3", "P3-rsc15", "P3-ml100k")
P3_TABLE_K = 100  # length of the similarity lists the pipeline publishes


def _sessions_as_users(sessions: Sessions) -> Interactions:
    return Interactions(
        matrix=session_item_matrix(sessions, sessions.n_items).astype(np.float32), sequences=sessions
    )


def _similarity_table(model: Recommender, k: int) -> tuple[Any, Any]:
    if hasattr(model, "similar_items"):
        return model.similar_items(k)
    vectors = model.item_vectors() if isinstance(model, UserRecommender) else None
    if vectors is None:
        raise ValueError(f"model {model.name!r} has neither similar_items() nor item_vectors(): no P3 table")
    return cosine_topk(vectors, k)


def _fit(model: Recommender, train: Any, valid: Any = None) -> tuple[float, dict[str, Any]]:
    """Seconds, and the fit's summary (epochs, best epoch, validation figures)."""
    t0 = time.perf_counter()
    report = model.fit(train, valid)
    seconds = time.perf_counter() - t0
    summary = {} if report is None else {"epochs": report.epochs, "best_epoch": report.best_epoch,
                                         "valid_metrics": report.valid_metrics}
    return seconds, summary


def _refit(
    rec: UserRecommender, best_epoch: int, model: str, params: dict | None, seed: int, data: Any
) -> tuple[UserRecommender, float, int]:
    """A fresh ``model`` fitted on train + valid (P2's test-time history), as the nightly fits every
    model on the days before the test day: a trained model for ``best_epoch`` epochs; a model without
    epochs (EASE, popularity) with its same settings, so baselines are compared on the same data."""
    if isinstance(rec, TrainedModel):
        refit = rec.refit_params(dict(params or {}), best_epoch)
        if refit is None:
            raise ValueError(f"--refit: {model!r} never validated an epoch, so there is no epoch count to refit")
    else:
        refit = dict(params or {})
    final = create(model, config=refit or None, seed=seed)
    full = Interactions(matrix=data.test.history, sequences=data.full_sequences)
    seconds, summary = _fit(final, full, None)
    return final, seconds, int(summary.get("epochs", 0))


def profile_model_params(profile: str, model: str) -> dict[str, Any]:
    """The settings the nightly gives ``model`` under night profile ``profile`` (empty: its defaults)."""
    from tasks.common.profiles import load_profile
    from tasks.features.bundle import NightConfig

    load_profile(profile)  # an unknown name fails here, with the known ones listed
    return NightConfig.for_profile(profile).params_for(model)


def run_evaluation(
    protocol: str,
    model: str,
    data_dir: Path | None = None,
    seed: int = 0,
    params: dict | None = None,
    table_k: int = P3_TABLE_K,
    refit: bool = False,
    tuning: bool = False,
    profile: str | None = None,
) -> dict[str, Any]:
    """Fit registry model ``model`` (config = ``params``) and evaluate it under ``protocol``.

    ``profile`` (a night profile's name, e.g. ``sessionrec`` or ``movielens``): start from the model
    settings the nightly trains with on that source (``NightConfig.for_profile``), ``params`` on top,
    so the figure is the one of the table the nightly would publish.

    ``refit`` (ml-100k protocols, user models): after early stopping on the validation targets, train
    a fresh model for the best epoch count on train + validation interactions, as the nightly run
    refits on every day before the test day (a model without epochs, such as EASE, is fitted again on
    train + validation with the same settings). The validation targets still only choose the epoch
    count; the test item is never trained on.

    ``tuning`` (rsc15 protocols): train on the data set's train_tr sessions and score its train_valid
    sessions instead of train_full -> test, so settings can be chosen without the test sessions.
    (ml-100k protocols report their validation figures under ``fit`` on every run.)

    Returns ``{"protocol", "model", "metrics", "n_predictions", "train_seconds", "predict_seconds",
    "params", "seed", "dataset", "device"}``.
    """
    canonical = {p.upper(): p for p in PROTOCOLS}
    if protocol.upper() not in canonical:
        raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    protocol = canonical[protocol.upper()]
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if profile is not None:
        params = {**profile_model_params(profile, model), **(params or {})}
    seed_everything(seed)
    np.random.seed(seed)
    rec = create(model, config=dict(params) if params else None, seed=seed)
    is_session = isinstance(rec, SessionRecommender)
    if protocol == "P3":
        protocol_run = "P3-rsc15" if is_session else "P3-ml100k"
    else:
        protocol_run = protocol

    if tuning and protocol_run not in ("P1", "P3-rsc15"):
        raise ValueError(f"--tuning is for the rsc15 protocols; {protocol_run} reports validation under 'fit'")
    if protocol_run in ("P1", "P3-rsc15"):
        rec, dataset, train_s, fit, t0, res = _run_rsc15(rec, protocol_run, model, data_dir, tuning, table_k)
    else:
        rec, dataset, train_s, fit, t0, res = _run_ml100k(rec, protocol_run, model, data_dir, params, seed,
                                                          refit, table_k)
    if rec.device.type == "cuda":
        torch.cuda.synchronize(rec.device)
    predict_s = time.perf_counter() - t0
    return {
        "protocol": protocol_run,
        "model": model,
        "dataset": dataset,
        "metrics": res["metrics"],
        "n_predictions": res["n_predictions"],
        "train_seconds": train_s,
        "predict_seconds": predict_s,
        "params": dict(params or {}),
        "profile": profile,
        "seed": seed,
        "device": str(rec.device),
        "fit": fit,  # validation figures: what hyperparameters are chosen by, never the test
    }


# Shown beside the primary metrics (recmodels.beyond defines them; --json carries every figure).
BEYOND_COLUMNS = ("COV@20", "POPULARITY@20", "NOVELTY@20")
HEADERS = {"POPULARITY@20": "pop@20", "NOVELTY@20": "nov@20"}  # short: the table fits 80 columns

PRIMARY = PROTOCOL_METRICS  # each protocol's first figures (tasks.common.models)


def _run_rsc15(rec: Any, protocol_run: str, model: str, data_dir: Path, tuning: bool, table_k: int) -> tuple:
    """P1 / P3-rsc15: fit on the rsc15-100k train sessions (``tuning``: train_tr), score the test
    (``tuning``: train_valid) sessions. Returns (model, dataset, train seconds, fit, scoring start, result)."""
    train, test, _ = (load_p1_tuning if tuning else load_p1)(data_dir)
    dataset = "rsc15-100k tuning (train_tr -> train_valid)" if tuning else "rsc15-100k"
    if protocol_run == "P1":
        if not isinstance(rec, SessionRecommender):
            raise ValueError(f"P1 needs a session model; {model!r} is not one")
        train_s, fit = _fit(rec, train)
        t0 = time.perf_counter()
        return rec, dataset, train_s, fit, t0, evaluate_sessions_beyond(
            rec, test, item_counts(train, test.n_items), ks=(10, 20))
    train_s, fit = _fit(rec, train if isinstance(rec, SessionRecommender) else _sessions_as_users(train))
    t0 = time.perf_counter()
    idx, score = _similarity_table(rec, table_k)
    return rec, dataset, train_s, fit, t0, evaluate_similarity(idx, score, *session_pairs(test), ks=(10, 20))


def _run_ml100k(rec: Any, protocol_run: str, model: str, data_dir: Path, params: dict | None, seed: int,
                refit: bool, table_k: int) -> tuple:
    """P2 / P3-ml100k on ml-100k: early stopping on the validation targets (optionally a refit on
    train + validation for the best epoch count), then the test users. Same return as ``_run_rsc15``."""
    data = load_p2(data_dir)
    is_user = isinstance(rec, UserRecommender)
    if is_user:
        train_s, fit = _fit(rec, data.train, data.valid)
        if refit:
            rec, refit_s, fit["refit_epochs"] = _refit(rec, fit.get("best_epoch", 0), model, params, seed, data)
            train_s += refit_s
    else:
        train_s, fit = _fit(rec, data.train.sequences)
    t0 = time.perf_counter()
    if protocol_run == "P2":
        # popularity = the interactions the final model was trained on (train + valid after refit)
        n_items = data.test.exclude.shape[1]
        counts = item_counts(data.test.history if refit else data.train.matrix, n_items)
        if is_user:
            res = evaluate_users_beyond(rec, data.test, counts, ks=(10, 20))
        else:
            res = evaluate_user_sequences_beyond(rec, data.full_sequences, data.test, counts, ks=(10, 20))
        return rec, "ml-100k", train_s, fit, t0, res
    idx, score = _similarity_table(rec, table_k)
    res = evaluate_similarity(idx, score, *user_last_pairs(data.valid, data.test), ks=(10, 20))
    # the same question one step earlier (last train item -> validation item): what table
    # settings are chosen by. With --refit the table has seen the validation items, so none.
    if not refit:
        pairs = user_last_train_pairs(data.train.sequences, data.valid)
        fit["p3_valid_metrics"] = evaluate_similarity(idx, score, *pairs, ks=(10, 20))["metrics"]
    return rec, "ml-100k", train_s, fit, t0, res


def print_table(
    result: dict[str, Any] | list[dict[str, Any]], console: Any = None, all_metrics: bool = False
) -> None:
    """Rich table, one row per result: the protocol's primary metrics (+ COV@20), or every metric."""
    from rich.console import Console
    from rich.table import Table

    results = result if isinstance(result, list) else [result]
    console = console or Console()
    names: list[str] = []
    for r in results:
        extra = tuple(r["metrics"]) if all_metrics else BEYOND_COLUMNS
        for m in (*PRIMARY.get(r["protocol"], ()), *extra):
            if m in r["metrics"] and m not in names:
                names.append(m)
    protocols = sorted({r["protocol"] for r in results})
    table = Table(title=f"{', '.join(protocols)} (conservative ties, full ranking)")
    for col in ("model", "seed", *names, "n_pred", "train s", "predict s"):
        table.add_column(HEADERS.get(col, col), justify="left" if col == "model" else "right")
    for r in results:
        cells = [f"{r['metrics'][m]:.4f}" if m in r["metrics"] else "" for m in names]
        table.add_row(
            r["model"],
            str(r["seed"]),
            *cells,
            f"{r['n_predictions']:,}",
            f"{r['train_seconds']:.2f}",
            f"{r['predict_seconds']:.2f}",
        )
    console.print(table)
