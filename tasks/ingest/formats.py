"""How a landing file is read with its source profile: the header check and the settings of the
format's field view (``sql/staging/fields_<format>.sql``), as one STRUCT of bound values."""

from __future__ import annotations

import gzip
from pathlib import Path

from tasks.common.profiles import CANONICAL_FIELDS, SourceProfile
from tasks.ingest.errors import IngestError

MAX_LINE_BYTES = 2 * 1024 * 1024  # a longer line is quarantined as an excerpt (sql/staging/lines.sql says 2 MiB)
ROLES = (*CANONICAL_FIELDS, "ts_offset")


def header_lines(profile: SourceProfile) -> int:
    return 1 if profile.format == "csv" and profile.header else 0


def _first_line(path: Path, compression: str, limit: int = 1 << 20) -> str:
    opener = gzip.open if compression == "gzip" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.readline(limit)
    except (OSError, EOFError) as exc:
        raise IngestError(f"{path}: cannot read ({exc})") from None
    try:
        return raw.decode("utf-8").rstrip("\r\n").lstrip("\ufeff")
    except UnicodeDecodeError:
        raise IngestError(f"{path}: line 1: header is not valid UTF-8") from None


def _roles(profile: SourceProfile) -> dict[str, str]:
    """Canonical role -> source column, including the timestamp's offset column when there is one."""
    roles = dict(profile.fields)
    if profile.ts_offset_column:
        roles["ts_offset"] = profile.ts_offset_column
    return roles


def _csv_names(path: Path, profile: SourceProfile, compression: str) -> list[str]:
    """Column names of a delimited file: its header (checked against the profile) or the profile's."""
    if not profile.header:
        return list(profile.columns)
    header = _first_line(path, compression)
    if not header:
        raise IngestError(f"{path}: file is empty")
    names = [h.strip().strip('"') for h in header.split(profile.delimiter)]
    missing = [src for src in _roles(profile).values() if src not in names]
    if missing:
        raise IngestError(
            f"{path}: line 1: missing required column(s) {missing} (found {names[:8]}; "
            f"delimiter {profile.delimiter!r} per profile {profile.name!r})"
        )
    return names


def _re2_literal(text: str) -> str:
    # Every non-alphanumeric character as \x{..}: safe inside and outside character classes in RE2.
    return "".join(c if c.isalnum() else f"\\x{{{ord(c):x}}}" for c in text)


def _csv_settings(path: Path, profile: SourceProfile, compression: str) -> dict[str, object]:
    names = _csv_names(path, profile, compression)
    pos = {role: names.index(src) + 1 for role, src in _roles(profile).items()}
    # Quoted fields are understood with a one-character delimiter (the quote grammar needs a
    # character class); with a longer delimiter (MovieLens 1M's ::) quotes are plain characters.
    quote = profile.quote if len(profile.delimiter) == 1 and profile.quote else ""
    d, q = _re2_literal(profile.delimiter), _re2_literal(quote or '"')
    fld = f"{q}(?:[^{q}]|{q}{q})*{q}|[^{d}{q}]*"
    return {
        "delim": profile.delimiter,
        "quote": quote,
        "full_pattern": f"(?:{fld})(?:{d}(?:{fld}))*",
        "field_pattern": f"({fld}){d}",
        "n_fields": len(names),
        **{f"pos_{f}": pos.get(f) for f in ROLES},
    }


def _json_pointer(key: str | None) -> str | None:
    """A profile key as a JSON pointer; a dot means nesting (``a.b`` -> ``/a/b``)."""
    if key is None:
        return None
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in key.split("."))


def _pointer_settings(profile: SourceProfile) -> dict[str, object]:
    roles = _roles(profile)
    return {f"p_{f}": _json_pointer(roles.get(f)) for f in ROLES}


def landing_settings(path: Path, profile: SourceProfile, compression: str) -> dict[str, object]:
    """The STRUCT ``getvariable('landing')`` of the format's field view (``sql/staging/set_landing.sql``)."""
    base: dict[str, object] = {"header_lines": header_lines(profile), "path": str(path)}
    if profile.format == "csv":
        return base | _csv_settings(path, profile, compression)
    return base | _pointer_settings(profile)
