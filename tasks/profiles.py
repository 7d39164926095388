"""Source profiles: how to read one kind of landing file. A new format needs a TOML file, no code.

A profile names the file format (csv/tsv with any delimiter, header or not; jsonl; parquet; any of
them gzip-compressed, detected from the file), which source column feeds each canonical field,
and how to read the timestamp. Built-in profiles live in ``profiles/<name>.toml``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

PROFILE_DIR = Path(__file__).resolve().parent.parent / "profiles"
CANONICAL_FIELDS = ("session_id", "user_id", "item_id", "event_type", "category", "ts")
REQUIRED_FIELDS = ("item_id", "ts")
FORMATS = ("csv", "jsonl", "parquet")
TS_KINDS = ("iso8601", "unix_s", "unix_ms", "strptime")


class ProfileError(ValueError):
    """A profile that cannot be used; the message is one line naming the profile and the problem."""


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

    @property
    def has_session(self) -> bool:
        return "session_id" in self.fields

    @property
    def has_user(self) -> bool:
        return "user_id" in self.fields


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
    fields = dict(doc.get("fields", {}))
    unknown = set(fields) - set(CANONICAL_FIELDS)
    if unknown:
        raise _fail(where, f"unknown field(s) {sorted(unknown)}; canonical fields are {CANONICAL_FIELDS}")
    defaults = {k: str(v) for k, v in doc.get("defaults", {}).items()}
    for f in REQUIRED_FIELDS:
        if f not in fields:
            raise _fail(where, f"[fields] must map {f!r}")
    if "session_id" not in fields and "user_id" not in fields:
        raise _fail(where, "[fields] must map session_id or user_id (sessions are derived from users)")
    ts = doc.get("timestamp", {})
    kind = ts.get("kind", "iso8601")
    if kind not in TS_KINDS:
        raise _fail(where, f"timestamp.kind {kind!r} not one of {TS_KINDS}")
    if kind == "strptime" and not ts.get("format"):
        raise _fail(where, "timestamp.kind = 'strptime' needs timestamp.format")
    columns = tuple(doc.get("columns", ()))
    header = bool(doc.get("header", False))
    if fmt == "csv" and not header:
        if not columns:
            raise _fail(where, "a headerless csv profile needs 'columns' (positional names)")
        missing = [c for c in fields.values() if c not in columns]
        if missing:
            raise _fail(where, f"fields map to columns {missing} that are not in 'columns'")
    delimiter = doc.get("delimiter", ",")
    if fmt == "csv" and len(delimiter) != 1:
        raise _fail(where, f"delimiter must be one character, got {delimiter!r}")
    return SourceProfile(
        name=str(doc.get("name", Path(where).stem)),
        format=fmt,
        fields=fields,
        delimiter=delimiter,
        header=header,
        quote=doc.get("quote", '"'),
        columns=columns,
        ts_kind=kind,
        ts_format=ts.get("format", ""),
        timezone=ts.get("timezone", "UTC"),
        defaults=defaults,
        dedupe=bool(doc.get("dedupe", True)),
    )
