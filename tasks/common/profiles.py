"""Source profiles: how to read one kind of landing file. A new format needs a TOML file, no code.

A profile names the file format (csv/tsv with any delimiter, header or not; jsonl; parquet; any of
them gzip-compressed, detected from the file), which source column feeds each canonical field,
and how to read the timestamp. Built-in profiles live in ``profiles/<name>.toml``.

Logs in the wild (README "Profiles for logs in the wild"): ``null_values`` (global and per field),
a timestamp composed of a date/datetime column plus an offset column, event types kept / renamed /
weighted (``[events]``), any delimiter, nested JSON keys (``a.b``) and guard-rail thresholds
(``[guards]``). The profile's ``[night]``, ``[night.features]`` and ``[night.models.NAME]`` tables are
the source's night settings (``tasks.common.night``; validated here, applied by ``load_night``).
``typed_batch_params`` turns a profile into the bound parameters of
``sql/staging/batch.sql`` (the one pass; ``dedupe`` goes to ``sql/staging/duplicates.sql``).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from dataclasses import fields as fields_of
from pathlib import Path

from tasks.common.night import NightConfigError, night_layer
from tasks.common.sqlfiles import REPO_ROOT

PROFILE_DIR = REPO_ROOT / "profiles"
CANONICAL_FIELDS = ("session_id", "user_id", "item_id", "event_type", "category", "ts")
REQUIRED_FIELDS = ("item_id", "ts")
FORMATS = ("csv", "jsonl", "parquet")
TS_KINDS = ("iso8601", "unix_s", "unix_ms", "strptime")
# The event types every profile may produce (= tasks.ingest.validate.DEFAULT_EVENT_TYPES, the project's
# vocabulary); a profile adds the targets of its renames, its weighted types and its default type.
BASE_EVENT_TYPES = frozenset({"click", "view", "cart", "purchase", "rating"})
OFFSET_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1}  # microseconds per unit of an offset column
NULLABLE_FIELDS = (*CANONICAL_FIELDS, "ts_offset")  # what [field_null_values] may name
TOP_LEVEL_KEYS = frozenset({
    "name", "format", "delimiter", "header", "quote", "columns", "fields", "timestamp", "defaults", "dedupe",
    "null_values", "field_null_values", "events", "guards", "night",
})


class ProfileError(ValueError):
    """A profile that cannot be used; the message is one line naming the profile and the problem."""


@dataclass(frozen=True)
class Guards:
    """Guard-rail thresholds: shares of a file's data rows above which the file is flagged (refused
    with ``--strict``). Applied by ingest (``tasks.ingest.stage.guard_flags``)."""

    max_duplicate_share: float = 0.05  # exact duplicates dropped
    max_filtered_share: float = 0.5  # rows of event types outside [events] keep
    max_null_key_share: float = 0.05  # rows whose item id or session key (session_id, else user_id) is NULL


@dataclass(frozen=True)
class SourceProfile:
    name: str
    format: str
    fields: dict[str, str]  # canonical field -> source column (csv header name / json key / parquet column)
    delimiter: str = ","
    header: bool = False
    quote: str = '"'
    columns: tuple[str, ...] = ()  # positional names for headerless csv
    ts_kind: str = "iso8601"
    ts_format: str = ""  # strptime pattern when ts_kind == "strptime"
    timezone: str = "UTC"  # zone of naive timestamps
    defaults: dict[str, str] = field(default_factory=dict)  # constant value for fields the source lacks
    dedupe: bool = True  # drop exact duplicate events of a file (and count them)
    ts_offset_column: str | None = None  # source column added to the timestamp (a date + ms offset)
    ts_offset_unit: str = "s"  # unit of ts_offset_column: s | ms | us
    null_values: tuple[str, ...] = ()  # raw texts that mean NULL in every field ("" always does)
    field_null_values: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per field, instead of the global
    keep_event_types: tuple[str, ...] = ()  # canonical (renamed) types kept; empty = all; others: filtered
    rename_event_types: dict[str, str] = field(default_factory=dict)  # source type -> canonical type
    event_weights: dict[str, float] = field(default_factory=dict)  # canonical type -> weight
    default_weight: float = 1.0  # weight of a type not in event_weights
    guards: Guards = field(default_factory=Guards)
    night: dict = field(default_factory=dict)  # the [night...] tables as set (validated), applied by load_night

    @property
    def has_session(self) -> bool:
        return "session_id" in self.fields

    @property
    def has_user(self) -> bool:
        return "user_id" in self.fields

    @property
    def event_types(self) -> frozenset[str]:
        """Canonical event types this profile can land: its keep-list when it has one, else the
        project's vocabulary plus its rename targets, weighted types and default type. Validation's
        row-level event-type set (``ValidationRules(event_types=profile.event_types)``)."""
        if self.keep_event_types:
            return frozenset(self.keep_event_types)
        return BASE_EVENT_TYPES | set(self.rename_event_types.values()) | set(self.event_weights) | {
            self.defaults.get("event_type", "click")
        }

    def nulls_for(self, field_name: str) -> tuple[str, ...]:
        """Raw texts read as NULL in ``field_name``: its own list if the profile gives one, else the
        global list; the empty string always."""
        own = self.field_null_values.get(field_name, self.null_values)
        return ("", *(v for v in own if v != ""))


def _fail(where: str, msg: str) -> ProfileError:
    return ProfileError(f"{where}: {msg}")


def load_profile(name_or_path: str) -> SourceProfile:
    """A built-in profile by name (``yoochoose``, ``sessionrec``, ``movielens``, ``synthetic``) or a TOML path."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" and candidate.is_file():
        path = candidate
    elif name_or_path.replace("-", "").replace("_", "").isalnum() and (PROFILE_DIR / f"{name_or_path}.toml").is_file():
        path = PROFILE_DIR / f"{name_or_path}.toml"
    else:
        known = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.toml")))
        raise ProfileError(f"unknown source profile {name_or_path!r} (built-in: {known}; or pass a .toml file)")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _fail(str(path), f"cannot read profile ({exc})") from None
    return parse_profile(doc, where=str(path))


def parse_profile(doc: dict, where: str = "<profile>") -> SourceProfile:
    fmt = doc.get("format", "csv")
    if fmt not in FORMATS:
        raise _fail(where, f"format {fmt!r} not one of {FORMATS}")
    fields = _parse_fields(doc, where)
    defaults = {k: str(v) for k, v in doc.get("defaults", {}).items()}
    ts = doc.get("timestamp", {})
    kind = ts.get("kind", "iso8601")
    if kind not in TS_KINDS:
        raise _fail(where, f"timestamp.kind {kind!r} not one of {TS_KINDS}")
    if kind == "strptime" and not ts.get("format"):
        raise _fail(where, "timestamp.kind = 'strptime' needs timestamp.format")
    columns, header, delimiter, quote = _parse_layout(doc, fmt, fields, where)
    unknown_top = set(doc) - TOP_LEVEL_KEYS
    if unknown_top:
        raise _fail(where, f"unknown key(s) {sorted(unknown_top)}; known: {sorted(TOP_LEVEL_KEYS)}")
    offset_column, offset_unit = _parse_offset(ts, where)
    if offset_column and fmt == "csv" and not header and offset_column not in columns:
        raise _fail(where, f"timestamp.offset_column {offset_column!r} is not in 'columns'")
    if offset_column and fmt == "jsonl" and any(p == "" for p in offset_column.split(".")):
        raise _fail(where, f"timestamp.offset_column {offset_column!r} has an empty part")
    null_values, field_nulls = _parse_nulls(doc, where)
    events = _parse_events(doc.get("events", {}), where)
    try:
        night = night_layer({"night": doc["night"]} if "night" in doc else {}, where)
    except NightConfigError as exc:
        raise ProfileError(str(exc)) from None
    return SourceProfile(
        name=str(doc.get("name", Path(where).stem)),
        format=fmt,
        fields=fields,
        delimiter=delimiter,
        header=header,
        quote=quote,
        columns=columns,
        ts_kind=kind,
        ts_format=ts.get("format", ""),
        timezone=ts.get("timezone", "UTC"),
        defaults=defaults,
        dedupe=bool(doc.get("dedupe", True)),
        ts_offset_column=offset_column,
        ts_offset_unit=offset_unit,
        null_values=null_values,
        field_null_values=field_nulls,
        guards=_parse_guards(doc.get("guards", {}), where),
        night=night,
        **events,
    )


def _parse_fields(doc: dict, where: str) -> dict[str, str]:
    fields = dict(doc.get("fields", {}))
    unknown = set(fields) - set(CANONICAL_FIELDS)
    if unknown:
        raise _fail(where, f"unknown field(s) {sorted(unknown)}; canonical fields are {CANONICAL_FIELDS}")
    for f in REQUIRED_FIELDS:
        if f not in fields:
            raise _fail(where, f"[fields] must map {f!r}")
    if "session_id" not in fields and "user_id" not in fields:
        raise _fail(where, "[fields] must map session_id or user_id (sessions are derived from users)")
    return fields


def _parse_layout(doc: dict, fmt: str, fields: dict[str, str], where: str) -> tuple[tuple[str, ...], bool, str, str]:
    """``(columns, header, delimiter, quote)``: how a record's values are laid out in the file."""
    columns = tuple(doc.get("columns", ()))
    header = bool(doc.get("header", False))
    if fmt == "csv" and not header:
        if not columns:
            raise _fail(where, "a headerless csv profile needs 'columns' (positional names)")
        missing = [c for c in fields.values() if c not in columns]
        if missing:
            raise _fail(where, f"fields map to columns {missing} that are not in 'columns'")
    delimiter = doc.get("delimiter", ",")
    if fmt == "csv" and (not isinstance(delimiter, str) or not delimiter or "\n" in delimiter or "\r" in delimiter):
        raise _fail(where, f"delimiter must be a non-empty string without line breaks, got {delimiter!r}")
    quote = doc.get("quote", '"')
    if not isinstance(quote, str) or len(quote) > 1:
        raise _fail(where, f"quote must be one character or empty, got {quote!r}")
    if fmt == "jsonl":
        bad_keys = [k for k in fields.values() if not isinstance(k, str) or any(p == "" for p in k.split("."))]
        if bad_keys:
            raise _fail(where, f"json keys {bad_keys} have an empty part (a dot means nesting: 'a.b')")
    return columns, header, delimiter, quote


def _str_list(value: object, where: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(where, f"{key} must be a list of strings, got {value!r}")
    return tuple(value)


def _parse_offset(ts: dict, where: str) -> tuple[str | None, str]:
    unknown = set(ts) - {"kind", "format", "timezone", "offset_column", "offset_unit"}
    if unknown:
        raise _fail(where, f"unknown [timestamp] key(s) {sorted(unknown)}")
    column = ts.get("offset_column")
    unit = ts.get("offset_unit", "s")
    if column is not None and (not isinstance(column, str) or not column):
        raise _fail(where, f"timestamp.offset_column must be a column name, got {column!r}")
    if unit not in OFFSET_UNITS:
        raise _fail(where, f"timestamp.offset_unit {unit!r} not one of {tuple(OFFSET_UNITS)}")
    if "offset_unit" in ts and column is None:
        raise _fail(where, "timestamp.offset_unit without timestamp.offset_column")
    return column, unit


def _parse_nulls(doc: dict, where: str) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    null_values = _str_list(doc.get("null_values", []), where, "null_values")
    per_field = doc.get("field_null_values", {})
    if not isinstance(per_field, dict):
        raise _fail(where, "[field_null_values] must be a table: field = [values]")
    unknown = set(per_field) - set(NULLABLE_FIELDS)
    if unknown:
        raise _fail(where, f"[field_null_values] names unknown field(s) {sorted(unknown)}; fields are {NULLABLE_FIELDS}")
    return null_values, {k: _str_list(v, where, f"field_null_values.{k}") for k, v in per_field.items()}


def _weight(value: object, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise _fail(where, f"{key} must be a finite number >= 0, got {value!r}")
    return float(value)


def _parse_events(events: dict, where: str) -> dict[str, object]:
    if not isinstance(events, dict):
        raise _fail(where, "[events] must be a table")
    unknown = set(events) - {"keep", "rename", "weights", "default_weight"}
    if unknown:
        raise _fail(where, f"unknown [events] key(s) {sorted(unknown)}; known: keep, rename, weights, default_weight")
    keep = _str_list(events.get("keep", []), where, "events.keep")
    rename = events.get("rename", {})
    if not isinstance(rename, dict) or not all(isinstance(v, str) and v for v in rename.values()):
        raise _fail(where, "[events.rename] must map source type = \"canonical type\" (non-empty strings)")
    weights = events.get("weights", {})
    if not isinstance(weights, dict):
        raise _fail(where, "[events.weights] must map canonical type = weight")
    weights = {k: _weight(v, where, f"events.weights.{k}") for k, v in weights.items()}
    if keep:
        never = sorted(set(weights) - set(keep))
        if never:
            raise _fail(where, f"events.weights name type(s) {never} that events.keep filters out "
                               "(keep and weights use the canonical, renamed names)")
    return {
        "keep_event_types": keep,
        "rename_event_types": dict(rename),
        "event_weights": weights,
        "default_weight": _weight(events.get("default_weight", 1.0), where, "events.default_weight"),
    }


def _parse_guards(guards: dict, where: str) -> Guards:
    if not isinstance(guards, dict):
        raise _fail(where, "[guards] must be a table")
    known = {f.name for f in fields_of(Guards)}
    unknown = set(guards) - known
    if unknown:
        raise _fail(where, f"unknown [guards] key(s) {sorted(unknown)}; known: {sorted(known)}")
    values = {}
    for k, v in guards.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
            raise _fail(where, f"guards.{k} must be a share between 0 and 1, got {v!r}")
        values[k] = float(v)
    return Guards(**values)


def typed_batch_params(profile: SourceProfile) -> dict[str, object]:
    """The typing parameters of ``sql/staging/batch.sql``, and ``dedupe`` (``sql/staging/duplicates.sql``)."""
    params: dict[str, object] = {
        "default_event_type": profile.defaults.get("event_type", "click"),
        "ts_kind": profile.ts_kind,
        "ts_format": profile.ts_format or "%Y-%m-%d %H:%M:%S",
        "timezone": profile.timezone,
        "dedupe": profile.dedupe,
        "has_offset": profile.ts_offset_column is not None,
        "offset_us": OFFSET_UNITS[profile.ts_offset_unit],
        "offset_unit": profile.ts_offset_unit,
        "keep_types": list(profile.keep_event_types),
        "rename_from": list(profile.rename_event_types),
        "rename_to": list(profile.rename_event_types.values()),
        "weight_types": list(profile.event_weights),
        "weight_values": list(profile.event_weights.values()),
        "default_weight": profile.default_weight,
    }
    for f in NULLABLE_FIELDS:
        params[f"null_{f}"] = list(profile.nulls_for(f))
    return params
