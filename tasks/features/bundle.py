"""The night as data: its configuration and the training bundle handed to (possibly remote) trainers.

The nightly flow builds features in the warehouse, then exports one *bundle* folder per night
(numpy / scipy files, no pickles): session splits, user splits and the id maps. Training workers read
only the bundle and write only checkpoints and candidate files next to it, so they can run on a GPU
pool on another machine; the flow alone writes the warehouse (one writer).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import duckdb
import numpy as np
import scipy.sparse as sp
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from recmodels.data import Interactions, Sessions, UserTargets
from tasks.common.config import Home, UserInputError
from tasks.common.faults import crash_point
from tasks.common.sqlfiles import sql
from tasks.features.build import (
    FeatureConfig,
    build_features,
    load_session_split,
    load_sessions,
    load_user_split,
    temporal_split,
    vocab_sizes,
)

SESSION_MODELS = ("gru4rec", "narm")
SESSION_BASELINES = ("pop", "spop", "vsknn")
USER_MODELS = ("neumf",)
USER_BASELINES = ("pop", "ease")
AUTOENCODERS = ("multvae", "multdae")


@dataclass(frozen=True)
class NightConfig:
    """Everything a night needs besides the date. Per-source defaults from ``for_profile``."""

    source: str = "synthetic"
    features: FeatureConfig = field(default_factory=FeatureConfig)
    train_days: int = 6  # days before D used for training (the last valid_days of them validate)
    valid_days: int = 1  # early-stopping days before D (more where one day holds too few events)
    session_models: tuple[str, ...] = SESSION_MODELS + SESSION_BASELINES
    user_models: tuple[str, ...] = USER_MODELS + USER_BASELINES
    autoencoders: tuple[str, ...] = AUTOENCODERS
    top_n: int = 20
    similar_k: int = 50
    gate_tolerance: float = 0.05  # relative: a challenger may lose at most 5% of the champion's figure
    retention_days: int = 30
    refit_full: bool = True  # after early stopping on D-1, refit on all days < D for the best epoch count
    warm_start: bool = False  # start from the last published checkpoint (embedding tables grow)
    warm_max_epochs: int = 3  # a warm-started model trains at most this many epochs (early stopping still applies)
    seed: int = 0
    model_params: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def for_profile(cls, source: str, overrides: Path | None = None) -> NightConfig:
        cfg = cls(source=source)
        if source in ("sessionrec", "yoochoose"):  # anonymous sessions: the session is the "user"
            # No per-user validation day exists for sessions, so the autoencoders train a fixed budget.
            # Batches of 500 sessions (the paper's batch size), chosen on rsc15's tuning split (clickrec
            # evaluate --protocol P3-rsc15 --tuning, 3 seeds) against the default 128: HR@20 0.3582 vs
            # 0.3581 (Mult-DAE) and 0.3762 vs 0.3755 (Mult-VAE), MRR@20 higher for both, and about
            # 1.4-1.5x less training time.
            fixed = {"epochs": 30, "batch_size": 500}
            cfg = replace(cfg, features=replace(cfg.features, entity="session", window_days=8), train_days=6,
                          model_params={"multvae": dict(fixed), "multdae": dict(fixed)})
        elif source == "movielens":  # ratings of logged-in users: sessions derived with a gap
            cfg = replace(
                cfg,
                features=replace(cfg.features, derive_sessions_from_user=True, entity="user", window_days=400,
                                 min_item_support=2),
                train_days=365,
                # One day of ratings holds ~100 rankable pairs: too few to choose an epoch by (the
                # autoencoders stopped at epoch 3-4 on noise). Two weeks hold ~1,350.
                valid_days=14,
                # Sessions derived from ratings are long (a user rates dozens of films at once): NARM
                # attends over every prefix, so cap its window and budget.
                # Autoencoder item vectors: "both" (decoder + encoder rows) scored best on ml-100k's P3
                # validation pairs; on click sessions the decoder's rows do (recmodels.autoencoders).
                model_params={"narm": {"max_len": 50, "n_epochs": 5},
                              "multvae": {"item_vectors": "both"}, "multdae": {"item_vectors": "both"}},
            )
        if overrides is not None:
            cfg = cfg.merged(read_overrides(Path(overrides)), origin=f"night config {overrides}")
        return cfg

    def merged(self, doc: dict, origin: str = "night config") -> NightConfig:
        """This config with a TOML document's values, validated first (``NightConfigError``: one line
        naming the key). Per model, key by key: a TOML that sets one multvae value keeps the others."""
        checked = validate_overrides(doc, origin)
        feats = replace(self.features, **checked.pop("features", {}))
        params = {name: dict(values) for name, values in self.model_params.items()}
        for name, values in checked.pop("model_params", {}).items():
            params[name] = {**params.get(name, {}), **values}
        for key in ("session_models", "user_models", "autoencoders"):
            if key in checked:
                checked[key] = tuple(checked[key])
        try:
            return replace(self, features=feats, model_params=params, **checked)
        except (TypeError, ValueError) as exc:
            raise NightConfigError(f"{origin}: {exc}") from None

    def model_labels(self) -> list[str]:
        """The labels ``--only`` and ``[model_params.LABEL]`` accept: what flows.train.plan names."""
        session = list(self.session_models)
        users = [f"{m}-user" if m in session else m for m in self.user_models]
        return session + users + list(self.autoencoders)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str)


# ------------------------------------------------------------------------ validated TOML overrides


class NightConfigError(UserInputError):
    """A ``--config`` TOML that does not describe a night: a usage error (exit 2), one line naming the key."""

    exit_code = 2


def _known_model(name: str) -> str:
    from recmodels.registry import MODELS

    base = name.removesuffix("-user")
    if base not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    return name


_Model = Annotated[str, AfterValidator(_known_model)]
_STRICT = ConfigDict(extra="forbid", strict=True)


class FeatureOverrides(BaseModel):
    """``[features]``: how raw clicks become training data (tasks.features.build.FeatureConfig)."""

    model_config = _STRICT
    gap_minutes: float = Field(default=30.0, gt=0)
    collapse_repeats: bool = True
    min_session_length: int = Field(default=2, ge=1)
    min_item_support: int = Field(default=5, ge=1)
    derive_sessions_from_user: bool = False
    window_days: int = Field(default=30, ge=1, le=3660)
    entity: Literal["user", "session"] = "user"


class NightOverrides(BaseModel):
    """The keys a night's ``--config`` TOML may set (README, "Night configuration"). Unset keys keep the
    source profile's value."""

    model_config = _STRICT
    features: FeatureOverrides | None = None
    train_days: int = Field(default=6, ge=1, le=3660)
    valid_days: int = Field(default=1, ge=1, le=366)
    session_models: list[_Model] | None = None
    user_models: list[_Model] | None = None
    autoencoders: list[_Model] | None = None
    top_n: int = Field(default=20, ge=1, le=10_000)
    similar_k: int = Field(default=50, ge=1, le=10_000)
    gate_tolerance: float = Field(default=0.05, ge=0, le=1)
    retention_days: int = Field(default=30, ge=1)
    refit_full: bool = True
    warm_start: bool = False
    warm_max_epochs: int = Field(default=3, ge=1)
    seed: int = Field(default=0, ge=0)
    model_params: dict[_Model, dict[str, Any]] | None = None


def _describe(err: dict) -> str:
    where = ""
    for part in err["loc"]:
        if isinstance(part, int):
            where += f"[{part}]"
        elif part != "[key]":
            where += f".{part}" if where else str(part)
    if err["type"] == "extra_forbidden":
        return f"unknown key {where!r}"
    got = err.get("input")
    msg = err["msg"].removeprefix("Value error, ")
    shown = "" if isinstance(got, dict | list) or repr(got) in msg else f" (got {got!r})"
    return f"{where}: {msg}{shown}"


def validate_overrides(doc: dict, origin: str = "night config") -> dict:
    """The TOML document checked against :class:`NightOverrides`; only the keys it sets come back."""
    try:
        model = NightOverrides.model_validate(doc)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise NightConfigError(f"{origin}: {_describe(errors[0])}{more}") from None
    out = model.model_dump(exclude_unset=True)
    if "features" in out and out["features"] is None:
        out.pop("features")
    if "model_params" in out and out["model_params"] is None:
        out.pop("model_params")
    return out


def read_overrides(path: Path) -> dict:
    """A night TOML file parsed (not yet validated); a missing or malformed file is a one-line error."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise NightConfigError(f"--config {path}: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise NightConfigError(f"night config {path}: not valid TOML: {exc}") from None


# ----------------------------------------------------------------------------------------- bundle


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


def progress(message: str) -> None:
    """A stage's progress line through Prefect's run logger (so it reaches the UI and, with
    ``clickrec --verbose``, stderr); plain logging outside a run."""
    import logging

    try:
        from prefect import get_run_logger

        get_run_logger().info(message)
    except Exception:  # noqa: BLE001 - no run context (a plain call, a test)
        logging.getLogger("clickrec").info(message)


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
        user_ids = [r[0] for r in con.execute(sql("night/user_ids")).fetchall()]
        np.save(folder / "user_ids.npy", np.asarray(user_ids, dtype=str))
        has_users = con.execute(sql("night/has_user_ids"), {"start": start, "end": end}).fetchall()[0][0]
        sizes = vocab_sizes(con)
        champions = {m: {"version": v, "checkpoint": p}
                     for m, v, p in con.execute(sql("night/champions"), {"run_date": run_date}).fetchall()}
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
