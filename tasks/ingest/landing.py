"""The inputs of an ingest run: which landing files, what each one is, and which days the run covers.

A landing file's identity is its resolved path (``file_id``), with its sha256 recorded: the same
file re-ingested replaces its own rows and quarantine; another file of the same name never removes
anything.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from tasks.ingest.errors import IngestError

Days = date | tuple[date, date] | None  # one day (--date), an inclusive range (backfill), or all


def day_span(day: Days) -> dict[str, date | None]:
    """SQL parameters of a run's day scope."""
    if isinstance(day, tuple):
        return {"day_from": day[0], "day_to": day[1]}
    return {"day_from": day, "day_to": day}


def day_label(day: Days) -> str | None:
    if isinstance(day, tuple):
        return f"{day[0]}..{day[1]}" if day[0] != day[1] else str(day[0])
    return str(day) if day else None


def new_run_id(kind: str = "ingest") -> str:
    return f"{kind}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"


def list_input_files(path: Path) -> list[Path]:
    """A file, or the data files of a folder (sorted; hidden files and sub-folders skipped)."""
    if not path.exists():
        raise IngestError(f"{path}: no such file or folder")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise IngestError(f"{path}: folder holds no files to ingest")
    return files


@dataclass(frozen=True)
class LandingFile:
    """One input of a run: the path it was given as and the file it is (symlinks resolved)."""

    given: Path
    resolved: Path

    @property
    def link_path(self) -> str | None:
        return str(self.given.absolute()) if self.given.is_symlink() else None


def file_id_of(resolved: Path) -> str:
    """The lineage key of a landing file: its resolved path, hashed (never the bare name)."""
    return hashlib.sha1(str(resolved).encode()).hexdigest()[:16]


def resolve_inputs(paths: Sequence[Path], allow_outside_links: bool = False) -> list[LandingFile]:
    """Resolve each input (symlinks followed), refusing one file given twice and, unless allowed, a
    symlink that leads outside the folder it sits in (a landing folder should not reach elsewhere)."""
    out: list[LandingFile] = []
    seen: dict[Path, Path] = {}
    for p in paths:
        given = Path(p)
        resolved = given.resolve()
        if given.is_symlink() and not allow_outside_links:
            folder = given.absolute().parent.resolve()
            if folder not in resolved.parents:
                raise IngestError(
                    f"{given}: symlink to {resolved}, outside its landing folder {folder}; refused "
                    "(pass --allow-outside-links to accept it)"
                )
        if resolved in seen:
            raise IngestError(f"{given}: the same file as {seen[resolved]} ({resolved}); a file is ingested once per run")
        seen[resolved] = given
        out.append(LandingFile(given=given, resolved=resolved))
    return out


def sha256_of(path: Path) -> tuple[str, int]:
    """Digest and size of a file read on its own (formats DuckDB reads itself: Parquet)."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def compression_of(path: Path) -> str:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return "gzip"
    if path.suffix == ".gz":
        raise IngestError(f"{path}: named .gz but is not gzip data")
    return "none"


def lake_name(source_file: str, file_id: str, run_id: str, i: int) -> str:
    """A lake file name unique per landing file and run, so no rename ever replaces another's file."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", source_file).strip(".")[:60] or "file"
    run = hashlib.sha1(run_id.encode()).hexdigest()[:8]
    return f"{stem}-{file_id}-{run}-{i}.parquet"
