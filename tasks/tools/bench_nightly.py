"""``clickrec bench nightly``: time and peak memory of each stage of a night on a synthetic log.

Every stage runs in its own child process, one after another on the same home folder, so each
stage's peak RSS is its own. Stages: generate, ingest (+ GX validation), features (+ bundle),
train one epoch of GRU4Rec and of Mult-VAE (training is reported per epoch), publish (top-N for
every user, cosine top-50 for every item, candidates -> promote -> published.duckdb).
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

START = date(2014, 4, 1)
TRAIN_SAMPLE_EVENTS = 500_000  # events timed per model in the train stage; the epoch is scaled from them


def _stage_generate(root: str, clicks: int, items: int, days: int) -> dict:
    from tasks.tools.synth import write_yoochoose_days

    t0 = time.perf_counter()
    write_yoochoose_days(Path(root) / "landing", days=days, clicks_per_day=clicks // days, seed=0, n_items=items,
                         start_date=START, with_user=True)
    return {"seconds": time.perf_counter() - t0}


def _stage_ingest(root: str, clicks: int, items: int, days: int) -> dict:
    from tasks.common.config import Home
    from tasks.common.profiles import load_profile
    from tasks.ingest.run import ingest

    t0 = time.perf_counter()
    files = sorted((Path(root) / "landing").iterdir())
    rep = ingest(Home.resolve(Path(root) / "home"), load_profile("synthetic"), files)
    return {"seconds": time.perf_counter() - t0, "rows_accepted": rep.totals["rows_accepted"],
           "rows_quarantined": rep.totals["rows_quarantined"]}


def _stage_features(root: str, clicks: int, items: int, days: int) -> dict:
    from tasks.common.config import Home
    from tasks.features.bundle import NightConfig, prepare_night

    cfg = NightConfig.for_profile("synthetic")
    cfg = cfg.updated(features={**cfg.features.model_dump(), "window_days": days}, train_days=days - 1)
    t0 = time.perf_counter()
    bundle = prepare_night(Home.resolve(Path(root) / "home"), START + timedelta(days=days - 1), cfg)
    return {"seconds": time.perf_counter() - t0, "bundle": str(bundle)}


def _stage_train(root: str, clicks: int, items: int, days: int) -> dict:
    """One epoch of each model family; above ``TRAIN_SAMPLE_EVENTS`` the epoch is timed on a prefix of the data
    and scaled by events (an epoch's work is linear in events), so a 33M-click night reports in minutes."""
    import torch

    from recmodels.data import Interactions
    from recmodels.registry import create
    from tasks.features.bundle import load_bundle_matrix, load_bundle_sessions

    bundle = next((Path(root) / "home" / "nights").iterdir())
    out = {}
    sessions = load_bundle_sessions(bundle, "sessions_train_full")
    n_sessions = int(np.searchsorted(sessions.offsets, TRAIN_SAMPLE_EVENTS, side="right")) - 1
    sample = sessions.take(np.arange(max(1, min(n_sessions, sessions.n_sessions))))
    gru = create("gru4rec", config={"epochs": 1}, seed=0)
    t0 = time.perf_counter()
    gru.fit(sample, None)
    measured = time.perf_counter() - t0
    out["gru4rec_events"] = int(len(sessions.items))
    out["gru4rec_timed_events"] = int(len(sample.items))
    out["gru4rec_epoch_seconds"] = measured * len(sessions.items) / len(sample.items)
    matrix = load_bundle_matrix(bundle, "users_train_full")
    n_users = int(np.searchsorted(matrix.matrix.indptr, TRAIN_SAMPLE_EVENTS, side="right")) - 1
    n_users = max(1, min(n_users, matrix.n_users))
    vae = create("multvae", config={"epochs": 1}, seed=0)
    t0 = time.perf_counter()
    vae.fit(Interactions(matrix.matrix[:n_users]), None)
    measured = time.perf_counter() - t0
    out["multvae_users"] = int(matrix.n_users)
    out["multvae_timed_users"] = n_users
    out["multvae_epoch_seconds"] = measured * matrix.n_users / n_users
    vae.save(Path(root) / "multvae")
    out["seconds"] = out["gru4rec_epoch_seconds"] + out["multvae_epoch_seconds"]
    out["threads"] = torch.get_num_threads()
    return out


def _stage_publish(root: str, clicks: int, items: int, days: int) -> dict:
    from recmodels.autoencoders import MultVAE
    from recmodels.similarity import cosine_topk
    from recmodels.user_training import topn_users
    from tasks.common.config import Home
    from tasks.common.sqlfiles import sql
    from tasks.common.warehouse import connect
    from tasks.features.bundle import bundle_meta, load_bundle_matrix
    from tasks.publish.published import build_published, promote, write_candidates

    home = Home.resolve(Path(root) / "home")
    bundle = next((home.root / "nights").iterdir())
    meta = bundle_meta(bundle)
    run_date = date.fromisoformat(meta["run_date"])
    model = MultVAE.load(Path(root) / "multvae")
    full = load_bundle_matrix(bundle, "users_train_full").matrix
    t0 = time.perf_counter()
    users = np.flatnonzero(np.diff(full.indptr) > 0)
    idx, val = topn_users(model, users, full[users], full[users], 20)
    topn_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    sim_idx, sim_val = cosine_topk(model.item_vectors().detach().float(), k=50)
    sim_s = time.perf_counter() - t1
    user_ids = np.load(bundle / "user_ids.npy", allow_pickle=False)
    t2 = time.perf_counter()
    con = connect(home)
    try:
        con.execute(sql("bench/model_run"), {"run_date": run_date})
        write_candidates(con, "user_topn", run_date, "multvae", "bench", user_ids[users], idx.numpy(), val.numpy())
        write_candidates(con, "item_similar", run_date, "multvae", "bench", np.arange(len(sim_idx)),
                         sim_idx.numpy(), sim_val.numpy())
        promote(con, run_date, "multvae", "bench")
    finally:
        con.close()
    build_published(home)
    return {"seconds": time.perf_counter() - t0, "topn_seconds": topn_s, "users": int(len(users)),
           "users_per_s": len(users) / topn_s, "similarity_seconds": sim_s, "items": int(len(sim_idx)),
           "items_per_s": len(sim_idx) / sim_s, "write_publish_seconds": time.perf_counter() - t2}


STAGES = (("generate", _stage_generate), ("ingest+validate", _stage_ingest), ("features", _stage_features),
          ("train (1 epoch each)", _stage_train), ("top-N + similarity + publish", _stage_publish))


def _entry(target, args: tuple, q) -> None:
    out = target(*args)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # this stage's own peak
    q.put(out)


def _child(target, *args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_entry, args=(target, args, q))
    p.start()
    out = q.get()  # before join: a large result must be drained for the child to exit
    p.join()
    if p.exitcode != 0:
        raise RuntimeError(f"bench stage {target.__name__} failed (exit code {p.exitcode})")
    return out


def bench_nightly(clicks: int, items: int, days: int = 7, workdir: Path | None = None, keep: bool = False) -> dict:
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="clickrec-bench-night-")) if own else Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    stages = []
    try:
        for name, fn in STAGES:
            out = _child(fn, str(root), clicks, items, days)
            stages.append({"stage": name, "seconds": round(out.pop("seconds"), 2),
                           **{k: (round(v, 2) if isinstance(v, float) else v) for k, v in out.items()}})
        return {"clicks": clicks, "items": items, "days": days, "stages": stages}
    finally:
        if own and not keep:
            shutil.rmtree(root, ignore_errors=True)
