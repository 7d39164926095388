"""Read the lake (clicks) and the published Parquet from any fsspec URL: local, s3://, gs://, abfs://...

The lake is Hive-partitioned Parquet: ``lake/clicks/event_date=YYYY-MM-DD/*.parquet`` and
``lake/recs/<table>/run_date=YYYY-MM-DD/data.parquet``. ``read_lake`` resolves the URL with fsspec
(``fsspec.core.url_to_fs``), hands that filesystem to Arrow (``PyFileSystem(FSSpecHandler(fs))``) and
reads with ``pyarrow.dataset``, so the object store needs only its fsspec backend installed (s3fs
for ``s3://``, gcsfs for ``gs://``, adlfs for ``abfs://``); credentials come the backend's usual way
(env vars, profiles, instance roles) or through ``storage_options``.

Filters on partition keys are resolved from the directory names: files of other days are never
opened (partition pruning), which is what makes reading one night of a long lake cheap on S3.
The date keys (``event_date``, ``run_date``) come back as ``date32``; Arrow's own inference would
give strings, and the warehouse has them as DATE.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

DATE_PARTITION_KEYS = ("event_date", "run_date")

# DNF filters as pyarrow.parquet takes them: [(col, op, value), ...] (AND) or [[...], [...]] (OR of ANDs)
Filters = pc.Expression | list[tuple[str, str, Any]] | list[list[tuple[str, str, Any]]]


def lake_filesystem(url: str, **storage_options: Any) -> tuple[pafs.FileSystem, str]:
    """(Arrow filesystem over the URL's fsspec backend, path inside it)."""
    fs, path = fsspec.core.url_to_fs(url, **storage_options)
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path.rstrip("/")


def lake_dataset(url: str, **storage_options: Any) -> ds.FileSystemDataset:
    """The Hive-partitioned Parquet dataset under ``url``, date partition keys typed ``date32``."""
    filesystem, root = lake_filesystem(url, **storage_options)
    # One listing: discover the files and partition keys with Arrow's inference (dates as strings),
    # then re-type the date keys and build the dataset on the same file list (no second listing,
    # which is a paged LIST per prefix on an object store).
    found = ds.dataset(root, filesystem=filesystem, format="parquet", partitioning="hive")
    inferred = found.partitioning.schema
    typed = pa.schema(
        [pa.field(f.name, pa.date32()) if f.name in DATE_PARTITION_KEYS else f for f in inferred]
    )
    return ds.dataset(
        found.files,
        filesystem=filesystem,
        format="parquet",
        partitioning=ds.partitioning(typed, flavor="hive"),
        partition_base_dir=root,
    )


def _expression(filters: Filters | None) -> pc.Expression | None:
    if filters is None or isinstance(filters, pc.Expression):
        return filters
    return pq.filters_to_expression(_coerce_dates(filters))


def _coerce_dates(filters: list) -> list:
    """ISO strings compared with a date key become dates (``("event_date", "=", "2024-01-02")`` works)."""

    def fix(term: tuple[str, str, Any]) -> tuple[str, str, Any]:
        col, op, value = term
        if col in DATE_PARTITION_KEYS:
            if isinstance(value, str):
                value = date.fromisoformat(value)
            elif isinstance(value, (list, tuple, set)):
                value = [date.fromisoformat(v) if isinstance(v, str) else v for v in value]
        return (col, op, value)

    if filters and isinstance(filters[0], list):
        return [[fix(t) for t in conj] for conj in filters]
    return [fix(t) for t in filters]


def read_lake(
    url: str,
    filters: Filters | None = None,
    columns: list[str] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pa.Table:
    """Read a Hive-partitioned Parquet folder of the lake from a local path or any fsspec URL.

    ``url``: e.g. ``s3://bucket/clickrec/lake/clicks``, ``gs://bucket/lake/recs/user_topn``,
    ``file:///srv/warehouse/lake/clicks`` or a plain path. ``filters``: a ``pyarrow.compute``
    expression or DNF tuples (``[("event_date", "=", date(2024, 1, 2))]``; ISO strings accepted for
    the date keys); conditions on partition keys prune whole partitions before any file is opened.
    ``storage_options``: passed to the fsspec backend (e.g. ``{"anon": True}``, ``{"profile": ...}``).
    """
    dataset = lake_dataset(url, **(storage_options or {}))
    return dataset.to_table(columns=columns, filter=_expression(filters))
