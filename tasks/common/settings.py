"""Every ``CLICKREC_*`` environment variable, in one typed object: type, default, description, check.

Code never reads ``os.environ`` for a ``CLICKREC_*`` name; it calls :func:`get_settings`, which
always reflects the current environment (a test's ``monkeypatch.setenv`` is seen at once). A bad
value is one line naming the variable and exit 2 (:class:`SettingsError`). An empty value counts as unset.

The README's tables of variables and of night-config keys are generated from here and from
:mod:`tasks.common.night` (:func:`markdown_tables`; ``python -m tasks.common.settings``), and a test
checks the README carries exactly that text.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from tasks.common.config import UserInputError

PREFIX = "CLICKREC_"
LOCK_WAIT_DEFAULT_SECONDS = 6 * 3600  # a later night or an ad-hoc ingest waits out a running night
# DuckDB's own size syntax (SET memory_limit): a number and a unit, e.g. 4GB, 512MiB, 1.5 GB.
_MEMORY_RE = re.compile(r"^\d+(\.\d+)?\s*(B|[KMGT]i?B)$", re.IGNORECASE)
_DEVICE_RE = re.compile(r"^(cpu|cuda|mps|xpu)(:\d+)?$")


class SettingsError(UserInputError):
    """A ``CLICKREC_*`` variable with a bad value: a usage error, one line naming the variable."""

    exit_code = 2


class Settings(BaseSettings):
    """The process's environment, typed: field ``workers`` is the variable ``CLICKREC_WORKERS``, and so on."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_ignore_empty=True, extra="ignore", frozen=True)

    home: Path | None = Field(
        default=None, description="The home folder (`--home` wins); unset: `./warehouse`.")
    lock_wait_seconds: float = Field(
        default=float(LOCK_WAIT_DEFAULT_SECONDS), ge=0,
        description="The one wait for anything another run holds (the warehouse and night locks, DuckDB's "
                    "file lock, validation's history ATTACH, the GX stores); then exit 4 naming the holder. "
                    "Default 6 h.")
    duckdb_memory: str = Field(
        default="4GB",
        description="DuckDB's memory limit per connection (beyond it DuckDB spills to `tmp/duckdb`), "
                    "in DuckDB's size syntax, e.g. `4GB`, `512MiB`.")
    timezone: str = Field(
        default="UTC", description="The zone of the default run date (the day before today) for runs outside a "
                                  "deployment; a deployment's run date comes from its schedule's own timezone (an IANA name).")
    workers: int = Field(default=2, ge=1, le=256, description="Threads of a backfill's per-day fan-out.")
    dask_address: str | None = Field(
        default=None, description="A Dask scheduler (`tcp://host:8786`) for the per-day fan-out (prefect-dask).")
    train_deployment: str | None = Field(
        default=None,
        description="Train through this Prefect deployment (`FLOW/DEPLOYMENT`, e.g. `train-night/gpu`) "
                    "instead of in-process.")
    device: str | None = Field(
        default=None,
        description="The torch device for training and scoring (`cpu`, `cuda`, `cuda:1`, ...); "
                    "unset: `cuda` when present, else `cpu`.")
    night_config: Path | None = Field(
        default=None, description="A night-config TOML for `clickrec demo` (unset: the demo's short budgets).")
    debug: bool = Field(
        default=False, description="`1`: print the traceback of an unexpected error instead of one line.")
    crash_at: str | None = Field(
        default=None,
        description="Tests only: SIGKILL the process at this named crash point (`tasks/common/faults.py`).")
    fuzz_examples: int = Field(default=8, ge=1, description="Tests only: fuzzed files per format.")
    hostile_mb: float = Field(default=1024.0, gt=0, description="Tests only: size of the hostile-input log in MB.")

    @field_validator("duckdb_memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not _MEMORY_RE.match(value.strip()):
            raise ValueError("expected a size such as 4GB or 512MiB")
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("expected an IANA time zone such as UTC or Europe/Berlin") from None
        return value

    @field_validator("train_deployment")
    @classmethod
    def _deployment(cls, value: str | None) -> str | None:
        if value is not None and (value.count("/") != 1 or value.startswith("/") or value.endswith("/")):
            raise ValueError("expected FLOW/DEPLOYMENT, e.g. train-night/gpu")
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str | None) -> str | None:
        if value is not None and not _DEVICE_RE.match(value):
            raise ValueError("expected a torch device such as cpu, cuda or cuda:1")
        return value

    @field_validator("crash_at")
    @classmethod
    def _crash_point(cls, value: str | None) -> str | None:
        from tasks.common.faults import POINTS

        if value is not None and value not in POINTS:
            raise ValueError(f"expected one of {', '.join(POINTS)}")
        return value


# Variables read outside Python (shell, deployment files): documented beside the others.
EXTERNAL_VARIABLES: tuple[tuple[str, str, str, str], ...] = (
    ("CLICKREC_PYTHON", "str", "`python3.11`", "The interpreter `run.sh` builds `.venv` with (read by `run.sh`)."),
    ("CLICKREC_REPO", "path", "unset", "The checkout path in `prefect.yaml`'s pull step (deployments)."),
)


_last: tuple[tuple[tuple[str, str], ...], Settings] | None = None  # (the CLICKREC_* variables, their settings)


def get_settings() -> Settings:
    """The environment's settings, validated (a bad value: :class:`SettingsError`, one line).

    Built again whenever a ``CLICKREC_*`` variable changed since the last call (a test's
    ``monkeypatch.setenv`` is seen at once); otherwise the last object is returned: building one
    costs about a millisecond, comparing the variables a few microseconds."""
    global _last
    key = tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith(PREFIX)))
    if _last is not None and _last[0] == key:
        return _last[1]
    try:
        settings = Settings()
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        name = PREFIX + str(err["loc"][0]).upper() if err["loc"] else PREFIX + "*"
        msg = err["msg"].removeprefix("Value error, ")
        raise SettingsError(f"{name}={err.get('input')!r}: {msg}") from None
    _last = (key, settings)
    return settings


def debug_tracebacks() -> bool:
    """``CLICKREC_DEBUG``, for the CLI's last-resort error handler: never raises (a bad value elsewhere in
    the environment is then the error being reported)."""
    try:
        return get_settings().debug
    except SettingsError:
        return False


# ------------------------------------------------------------------------------ generated docs


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Annotated:  # the night's model names carry a registry check
        base, *checks = get_args(annotation)
        named = any(getattr(getattr(c, "func", None), "__name__", "") == "_known_model" for c in checks)
        return "model name" if named else _type_name(base)
    if origin is Literal:
        return " \\| ".join(f'`"{a}"`' for a in get_args(annotation))
    args = [a for a in get_args(annotation) if a is not type(None)]
    if origin is not None and args and len(args) < len(get_args(annotation)):  # X | None
        return _type_name(args[0])
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}s" if args else "list"
    if origin is dict:
        return "table"
    return {str: "str", int: "int", float: "float", bool: "bool", Path: "path"}.get(annotation, str(annotation))


def _bounds(info: FieldInfo) -> str:
    parts = []
    for meta in info.metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{sign} {value}")
    return f" ({', '.join(parts)})" if parts else ""


def _default_text(value: Any, toml: bool = False) -> str:
    """``value`` as the reader writes it: TOML for night keys (strings quoted), plain for variables."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple | list):
        return "`[" + ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in value) + "]`"
    if isinstance(value, str) and toml:
        return f'`"{value}"`'
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def variables_table() -> str:
    """The markdown table of every ``CLICKREC_*`` variable (from :class:`Settings`)."""
    rows = ["| variable | type | default | description |", "|---|---|---|---|"]
    for name, info in Settings.model_fields.items():
        rows.append(f"| `{PREFIX}{name.upper()}` | {_type_name(info.annotation)}{_bounds(info)} | "
                    f"{_default_text(info.default)} | {_cell(info.description or '')} |")
    for name, kind, default, description in EXTERNAL_VARIABLES:
        rows.append(f"| `{name}` | {kind} | {default} | {_cell(description)} |")
    return "\n".join(rows)


def _profile_values() -> dict[str, dict[str, list[str]]]:
    """``{"night.train_days": {"365": ["movielens"]}, ...}``: what each built-in profile sets."""
    from tasks.common.profiles import PROFILE_DIR, load_profile

    found: dict[str, dict[str, list[str]]] = {}

    def walk(table: str, values: dict[str, Any], profile: str) -> None:
        for key, value in values.items():
            if isinstance(value, dict) and key == "features":
                walk(f"{table}.{key}", value, profile)
            elif key != "models":
                found.setdefault(f"{table}.{key}", {}).setdefault(_default_text(value, toml=True), []).append(profile)
        if table == "night" and values.get("models"):  # one entry per profile: the tables it sets
            names = ", ".join(f"`{name}`" for name in values["models"])
            found.setdefault("night.models", {}).setdefault(names, []).append(profile)

    for path in sorted(PROFILE_DIR.glob("*.toml")):
        walk("night", load_profile(path.stem).night, path.stem)
    return found


def _by_profile(values: dict[str, list[str]]) -> str:
    return "; ".join(f"{', '.join(profiles)}: {value}" for value, profiles in values.items())


def _model_rows(model: type[BaseModel], table: str, profiles: dict[str, dict[str, list[str]]]) -> list[str]:
    rows = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows += _model_rows(annotation, f"{table}.{name}", profiles)
            continue
        if get_origin(annotation) is dict:
            rows.append(f"| `[{table}.{name}.NAME]` | table | none | {_by_profile(profiles.get(f'{table}.{name}', {}))} "
                        f"| {_cell(info.description or '')} |")
            continue
        default = _default_text(info.get_default(call_default_factory=True), toml=True)
        rows.append(f"| `[{table}]` `{name}` | {_type_name(annotation)}{_bounds(info)} | {default} | "
                    f"{_by_profile(profiles.get(f'{table}.{name}', {}))} | {_cell(info.description or '')} |")
    return rows


def night_keys_table() -> str:
    """The markdown table of every night-config key (from :class:`tasks.common.night.NightSettings`), with
    the values the built-in profiles set."""
    from tasks.common.night import NightSettings

    rows = ["| table and key | type | built-in default | built-in profiles set | description |",
            "|---|---|---|---|---|"]
    return "\n".join(rows + _model_rows(NightSettings, "night", _profile_values()))


def markdown_tables() -> str:
    """Both tables, as the README carries them (between the ``settings:`` markers)."""
    return (f"<!-- settings:variables (generated: python -m tasks.common.settings) -->\n{variables_table()}\n"
            f"<!-- /settings:variables -->\n\n"
            f"<!-- settings:night (generated: python -m tasks.common.settings) -->\n{night_keys_table()}\n"
            f"<!-- /settings:night -->\n")


if __name__ == "__main__":
    print(markdown_tables(), end="")
