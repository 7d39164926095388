"""The night's configuration, typed: every key with its type, range, default and description, once.

One TOML shape everywhere: ``[night]`` (the scalar keys), ``[night.features]`` (how clicks become
training data) and ``[night.models.NAME]`` (a model's own hyperparameters; ``NAME`` a label the
night trains, e.g. ``gru4rec``, ``pop-user``). A night is built in layers, each overriding the one
before key by key (one multvae value in a later layer keeps the multvae values of earlier ones):

1. the built-in defaults (:class:`NightSettings`);
2. the source profile's ``[night...]`` tables (``profiles/<name>.toml``: a custom profile carries its own);
3. the tuned file ``<home>/tuned/<profile name>.toml`` (written by ``clickrec tune``), when it exists;
4. the ``--config`` TOML of the run.

Every layer is validated before anything starts: an unknown key, a wrong type or a value out of range
is one line naming the file and the key (``NightConfigError``, exit 2).
"""

from __future__ import annotations

import json
import tomllib
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from tasks.common.config import UserInputError
from tasks.common.models import NIGHT_AUTOENCODERS, NIGHT_SESSION_MODELS, NIGHT_USER_MODELS

if TYPE_CHECKING:
    from tasks.common.config import Home

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)


class NightConfigError(UserInputError):
    """A night TOML that does not describe a night: a usage error (exit 2), one line naming the key."""

    exit_code = 2


def _known_model(name: str) -> str:
    from recmodels.registry import MODELS

    base = name.removesuffix("-user")
    if base not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    return name


ModelName = Annotated[str, AfterValidator(_known_model)]


class FeatureConfig(BaseModel):
    """``[night.features]``: how raw clicks become training data (``tasks.features.build``)."""

    model_config = _STRICT
    gap_minutes: float = Field(
        default=30.0, gt=0, description="Inactivity gap (minutes) that starts a new session when sessions are "
                                        "derived from users.")
    collapse_repeats: bool = Field(default=True, description="`A A B` -> `A B` within a session.")
    min_session_length: int = Field(default=2, ge=1, description="Shorter sessions are dropped.")
    min_item_support: int = Field(
        default=5, ge=1, description="Events an item needs (counted after collapsing) to be kept.")
    derive_sessions_from_user: bool = Field(
        default=False, description="Sessions from each user's timeline (cut at `gap_minutes`) instead of the "
                                   "source's session id.")
    window_days: int = Field(
        default=30, ge=1, le=3660, description="Days of `raw.clicks` one feature build reads, ending on the run date.")
    entity: Literal["user", "session"] = Field(
        default="user", description="Rows of the user models: users, or sessions when the source has no users.")

    def window(self, end_date: date) -> tuple[date, date]:
        """The inclusive ``(start, end)`` event_date window of a build ending on ``end_date``."""
        return end_date - timedelta(days=self.window_days - 1), end_date


class NightSettings(BaseModel):
    """Every key a night TOML may set under ``[night]``, with its built-in default."""

    model_config = _STRICT
    train_days: int = Field(
        default=6, ge=2, le=3660, description="Days before D used for training (the last `valid_days` of them "
                                              "validate).")
    valid_days: int = Field(
        default=1, ge=1, le=366, description="The last training days that validate (early stopping); must be "
                                             "less than `train_days`.")
    session_models: tuple[ModelName, ...] = Field(
        default=NIGHT_SESSION_MODELS, strict=False, description="Next-item models the night trains.")
    user_models: tuple[ModelName, ...] = Field(
        default=NIGHT_USER_MODELS, strict=False,
        description="Top-N models the night trains (a name also in `session_models` gets the label `NAME-user`).")
    autoencoders: tuple[ModelName, ...] = Field(
        default=NIGHT_AUTOENCODERS, strict=False,
        description="Item similarity + top-N models; the one that validates better is published.")
    top_n: int = Field(default=20, ge=1, le=10_000, description="Recommendations per user / session.")
    similar_k: int = Field(default=50, ge=1, le=10_000, description="Similar items per item.")
    gate_tolerance: float = Field(
        default=0.05, ge=0, le=1, description="Relative: a challenger may lose at most this share of the "
                                              "champion's figure and still be published.")
    retention_days: int = Field(
        default=30, ge=1, description="Published nights kept, counted back from the newest; also the nights of bundles "
                                         "and checkpoints (champions always kept) and the days of GX results retention keeps.")
    refit_full: bool = Field(
        default=True, description="After early stopping, refit on all days < D for the best epoch count.")
    warm_start: bool = Field(
        default=False, description="Start each model from its last published checkpoint (tables grow).")
    warm_max_epochs: int = Field(
        default=3, ge=1, description="Epochs a warm-started model trains at most (early stopping still applies).")
    seed: int = Field(default=0, ge=0, description="Every model's seed.")
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    models: dict[ModelName, dict[str, Any]] = Field(
        default_factory=dict,
        description="A model's own hyperparameters (`recmodels/`; training settings `epochs`, `lr`, "
                    "`batch_size`, `patience`); `NAME` is a label the night trains.")


class NightConfig(NightSettings):
    """A night's resolved configuration: the layers merged, plus the source it reads."""

    source: str = Field(default="synthetic", description="The source profile (not a TOML key).")

    @model_validator(mode="after")
    def _split_leaves_training_days(self) -> NightConfig:
        if self.valid_days >= self.train_days:
            raise ValueError(f"valid_days ({self.valid_days}) must be less than train_days ({self.train_days}): "
                             "at least one day must train")
        return self

    @classmethod
    def for_profile(cls, source: str, overrides: Path | None = None, home: Home | None = None) -> NightConfig:
        """The night of ``source``: built-in defaults < profile < tuned file (with ``home``) < ``overrides``."""
        return load_night(source, overrides, home)

    def updated(self, **changes: Any) -> NightConfig:
        """This config with ``changes``, validated like any layer."""
        return type(self).model_validate({**self.model_dump(), **changes})

    def params_for(self, label: str, model: str | None = None) -> dict[str, Any]:
        """The ``[night.models.NAME]`` table of ``label`` (falling back to its registry ``model``)."""
        return dict(self.models.get(label, self.models.get(model or label, {})))

    def model_labels(self) -> list[str]:
        """The labels ``--only`` and ``[night.models.NAME]`` accept: what the night's plan names."""
        session = list(self.session_models)
        users = [f"{m}-user" if m in session else m for m in self.user_models]
        return session + users + list(self.autoencoders)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)


# ------------------------------------------------------------------------------- layers


class _NightDocument(BaseModel):
    """A night TOML file: only a ``[night]`` table (a profile's other tables are the profile's own)."""

    model_config = _STRICT
    night: NightSettings = Field(default_factory=NightSettings)


_NIGHT_KEYS = frozenset(NightSettings.model_fields) | {"model_params"}


def _describe(err: dict) -> str:
    where = ""
    for part in err["loc"]:
        if isinstance(part, int):
            where += f"[{part}]"
        elif part != "[key]":
            where += f".{part}" if where else str(part)
    if err["type"] == "extra_forbidden":
        hint = ""
        if len(err["loc"]) == 1 and err["loc"][0] in _NIGHT_KEYS:
            hint = " (night settings live under [night]: [night] top_n = 20, [night.features], [night.models.NAME])"
        return f"unknown key {where!r}{hint}"
    got = err.get("input")
    msg = err["msg"].removeprefix("Value error, ")
    shown = "" if isinstance(got, dict | list) or repr(got) in msg else f" (got {got!r})"
    return f"{where}: {msg}{shown}"


def _fail(origin: str, exc: ValidationError) -> NightConfigError:
    errors = exc.errors(include_url=False)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return NightConfigError(f"{origin}: {_describe(errors[0])}{more}")


def night_layer(doc: dict, origin: str) -> dict[str, Any]:
    """A TOML document's ``[night]`` tables validated; only the keys it sets come back (nested)."""
    try:
        checked = _NightDocument.model_validate(doc)
    except ValidationError as exc:
        raise _fail(origin, exc) from None
    return checked.model_dump(exclude_unset=True).get("night", {})


def merge_layers(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    """``layer`` over ``base``: scalars replaced, ``features`` and each model's table merged key by key."""
    out = {**base, **{k: v for k, v in layer.items() if k not in ("features", "models")}}
    if "features" in layer:
        out["features"] = {**base.get("features", {}), **layer["features"]}
    if "models" in layer:
        models = {name: dict(values) for name, values in base.get("models", {}).items()}
        for name, values in layer["models"].items():
            models[name] = {**models.get(name, {}), **values}
        out["models"] = models
    return out


def read_toml(path: Path, what: str) -> dict:
    """A TOML file parsed (not yet validated); a missing or malformed file is a one-line error."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NightConfigError(f"{what} {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise NightConfigError(f"{what} {path}: not valid TOML: {exc}") from None


def tuned_path(home: Home, profile_name: str) -> Path:
    """Where ``clickrec tune`` writes, and the night reads, a source's tuned model settings."""
    return home.tuned / f"{profile_name}.toml"


def load_night(source: str, config: Path | None = None, home: Home | None = None) -> NightConfig:
    """The night of ``source`` with every layer applied (see the module docstring)."""
    from tasks.common.profiles import load_profile

    profile = load_profile(source)  # its [night] tables were validated when it loaded
    merged = merge_layers({}, profile.night)
    origins = [f"profile {profile.name}"]
    if home is not None and tuned_path(home, profile.name).is_file():
        tuned = tuned_path(home, profile.name)
        merged = merge_layers(merged, night_layer(read_toml(tuned, "tuned file"), f"night config {tuned}"))
        origins.append(f"tuned file {tuned}")
    if config is not None:
        merged = merge_layers(merged, night_layer(read_toml(Path(config), "--config"), f"night config {config}"))
        origins.append(f"--config {config}")
    try:
        return NightConfig.model_validate({**merged, "source": source})
    except ValidationError as exc:
        raise _fail(f"night config of {source} ({' < '.join(origins)})", exc) from None
