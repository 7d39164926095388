"""Every SQL statement the pipeline runs lives in ``sql/``; this module only finds and reads them.

``sql/`` is laid out by data layer (sql/README.md): staging -> features -> models -> recs -> published,
beside ops and analyst; each layer's columns are described in its ``columns.yaml``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # tasks/common/ -> the repository
SQL_DIR = REPO_ROOT / "sql"


@cache
def sql(name: str) -> str:
    """Text of ``sql/<name>.sql`` (e.g. ``sql("recs/promote_insert")``). Names come from code, never data."""
    path = (SQL_DIR / f"{name}.sql").resolve()
    if SQL_DIR not in path.parents:
        raise ValueError(f"SQL name escapes sql/: {name!r}")
    return path.read_text()
