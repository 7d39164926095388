"""The night's training bundle, handed to (possibly remote) trainers. Its configuration:
``tasks.common.night`` (``NightConfig``, re-exported here).

The nightly flow builds features in the warehouse, then exports one *bundle* folder per night
(numpy / scipy files, no pickles): session splits, user splits and the id maps. Training workers read
only the bundle and write only checkpoints and candidate files next to it, so they can run on a GPU
pool on another machine; the flow alone writes the warehouse (one writer).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import scipy.sparse as sp

from recmodels.data import Interactions, Sessions, UserTargets
from tasks.common.config import Home
from tasks.common.faults import crash_point
from tasks.common.night import NightConfig, NightConfigError  # re-exported: the night's config lives there
from tasks.common.progress import progress
from tasks.common.sqlfiles import sql
from tasks.features.build import (
    build_features,
    load_session_split,
    load_sessions,
    load_user_split,
    temporal_split,
    vocab_sizes,
)

__all__ = ["NightConfig", "NightConfigError", "bundle_meta", "prepare_night"]


def _save_sessions(folder: Path, name: str, s: Sessions) -> None:
    ids = np.asarray(s.session_ids if s.session_ids is not None else np.zeros(0), dtype=str)
    times = s.times if s.times is not None else np.zeros(0)
    np.savez(folder / f"{name}.npz", items=s.items, offsets=s.offsets, times=times, ids=ids,
             n_items=np.int64(s.n_items))


def load_bundle_sessions(folder: Path, name: str) -> Sessions:
    with np.load(folder / f"{name}.npz", allow_pickle=False) as z:
        times = z["times"] if len(z["times"]) else None
        ids = z["ids"] if len(z["ids"]) else None
        return Sessions(z["items"], z["offsets"], int(z["n_items"]), times, ids)


def _save_targets(folder: Path, name: str, t: UserTargets) -> None:
    np.savez(folder / f"{name}.npz", users=t.users, targets=t.targets)
    sp.save_npz(folder / f"{name}_history.npz", t.history.tocsr())
    sp.save_npz(folder / f"{name}_exclude.npz", t.exclude.tocsr())


def load_bundle_targets(folder: Path, name: str) -> UserTargets:
    with np.load(folder / f"{name}.npz", allow_pickle=False) as z:
        users, targets = z["users"], z["targets"]
    return UserTargets(users, targets, sp.load_npz(folder / f"{name}_history.npz").tocsr(),
                       sp.load_npz(folder / f"{name}_exclude.npz").tocsr())


def load_bundle_matrix(folder: Path, name: str) -> Interactions:
    return Interactions(sp.load_npz(folder / f"{name}.npz").tocsr())


def bundle_meta(folder: Path) -> dict:
    return json.loads((folder / "meta.json").read_text())


def prepare_night(home: Home, run_date: date, cfg: NightConfig) -> Path:
    """Rebuild features for the window ending on ``run_date`` and export the night's bundle folder."""
    start, end = cfg.features.window(run_date)
    folder = home.root / "nights" / str(run_date)
    folder.mkdir(parents=True, exist_ok=True)
    from tasks.common.warehouse import connect

    con = connect(home)
    try:
        progress(f"features {start}..{end}: building (entity {cfg.features.entity})")
        summary = build_features(con, start, end, cfg.features)
        progress(f"features {start}..{end}: {summary.n_events:,} events of {summary.n_raw_events:,}, "
                 f"{summary.n_sessions:,} sessions, {summary.n_items:,} items")
        spec = temporal_split(con, run_date, cfg.train_days, cfg.valid_days)
        crash_point("features-after-build")
        sessions = load_session_split(con, spec)
        _save_sessions(folder, "sessions_train", sessions.train)
        _save_sessions(folder, "sessions_valid", sessions.valid)
        _save_sessions(folder, "sessions_train_full", sessions.train_full)
        _save_sessions(folder, "sessions_test", sessions.test)
        # The night's own sessions, as they stand at the end of the day: what session_next is for.
        _save_sessions(folder, "sessions_night", load_sessions(con, run_date, run_date))
        users = load_user_split(con, spec)
        sp.save_npz(folder / "users_train.npz", users.train.matrix.tocsr())
        sp.save_npz(folder / "users_train_full.npz", users.train_full.matrix.tocsr())
        _save_targets(folder, "users_valid", users.valid)
        _save_targets(folder, "users_test", users.test)
        user_ids = [r[0] for r in con.execute(sql("features/user_ids")).fetchall()]
        np.save(folder / "user_ids.npy", np.asarray(user_ids, dtype=str))
        has_users = con.execute(sql("features/has_user_ids"), {"start": start, "end": end}).fetchall()[0][0]
        sizes = vocab_sizes(con)
        champions = {m: {"version": v, "checkpoint": p}
                     for m, v, p in con.execute(sql("models/champions"), {"run_date": run_date}).fetchall()}
    finally:
        con.close()
    fingerprint = hashlib.sha256()
    for f in sorted(folder.glob("*.np[yz]")):
        fingerprint.update(f.read_bytes())
    meta = {
        "run_date": str(run_date), "window_start": str(start), "window_end": str(end),
        "train_start": str(spec.train_start), "valid_start": str(spec.valid_from), "valid_day": str(spec.valid_day), "test_day": str(spec.test_day),
        "entity": cfg.features.entity, "has_user_ids": bool(has_users), "sizes": sizes,
        "features": asdict(summary) | {"start_date": str(start), "end_date": str(end)},
        "fingerprint": fingerprint.hexdigest()[:16], "config": json.loads(cfg.to_json()),
        "champions": champions,  # model label -> its published version and checkpoint before D
        "warm_start": champions if cfg.warm_start else {},  # where each model's training starts from
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
    progress(f"bundle for {run_date} exported to {folder} (fingerprint {meta['fingerprint']})")
    return folder


def previous_day(d: date) -> date:
    return d - timedelta(days=1)


def open_read_only(home: Home) -> duckdb.DuckDBPyConnection:
    from tasks.common.warehouse import connect

    return connect(home, read_only=True)
