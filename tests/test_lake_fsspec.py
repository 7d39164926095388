"""tasks.common.lake_io.read_lake over fsspec URLs: a Hive-partitioned lake written by DuckDB, read back."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tasks.common.lake_io import lake_dataset, read_lake

DAYS = [date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """``clicks`` by event_date (rows per day 10, 20, 30) and ``recs/user_topn`` by run_date, as the pipeline lays them out."""
    root = tmp_path_factory.mktemp("lake")
    con = duckdb.connect()
    con.execute(
        """
        CREATE TABLE clicks AS
        SELECT i AS session_id, i % 7 AS item_id, (DATE '2024-03-01' + d::INTEGER) AS event_date
        FROM range(3) a(d), range(60) b(i)
        WHERE i < 10 * (d + 1)
        """
    )
    con.execute(
        "COPY clicks TO $path (FORMAT parquet, PARTITION_BY (event_date))", {"path": str(root / "clicks")}
    )
    (root / "recs").mkdir()  # DuckDB creates only the last folder
    con.execute(
        """
        COPY (SELECT 'multvae' AS model, u AS user_id, r AS rank, (u * 3 + r) % 50 AS item_id,
                     (DATE '2024-03-01' + n::INTEGER) AS run_date
              FROM range(2) a(n), range(5) b(u), range(1, 4) c(r))
        TO $path (FORMAT parquet, PARTITION_BY (run_date))
        """,
        {"path": str(root / "recs" / "user_topn")},
    )
    per_day = dict(con.execute("SELECT event_date, count(*) FROM clicks GROUP BY 1").fetchall())
    return {
        "root": root,
        "per_day": per_day,
        "item_sum": con.execute("SELECT sum(item_id) FROM clicks").fetchone()[0],
    }


def test_reads_whole_lake_from_file_url(lake: dict) -> None:
    root: Path = lake["root"]
    t = read_lake(f"file://{root / 'clicks'}")
    assert t.num_rows == 60 == sum(lake["per_day"].values())
    assert t.schema.field("event_date").type == pa.date32()  # a DATE, not Arrow's inferred string
    assert set(t.column("event_date").to_pylist()) == set(DAYS)
    assert pc.sum(t.column("item_id")).as_py() == lake["item_sum"]
    # rows keep their partition: day d has 10 * (d + 1) rows
    counts = t.group_by("event_date").aggregate([("session_id", "count")]).to_pylist()
    assert {r["event_date"]: r["session_id_count"] for r in counts} == lake["per_day"]
    # a plain path is the same dataset
    assert read_lake(str(root / "clicks")).sort_by("session_id").equals(t.sort_by("session_id"))


def test_partition_filter_returns_one_day(lake: dict) -> None:
    url = f"file://{lake['root'] / 'clicks'}"
    t = read_lake(url, filters=[("event_date", "=", DAYS[1])])
    assert t.num_rows == lake["per_day"][DAYS[1]] == 20
    assert set(t.column("event_date").to_pylist()) == {DAYS[1]}
    # ISO strings and expressions mean the same
    assert read_lake(url, filters=[("event_date", "=", "2024-03-02")]).num_rows == 20
    assert read_lake(url, filters=pc.field("event_date") >= pa.scalar(DAYS[1])).num_rows == 50
    assert read_lake(url, filters=[("event_date", "in", ["2024-03-01", "2024-03-03"])]).num_rows == 40


def test_filter_is_pushed_down_to_partitions(lake: dict, tmp_path: Path) -> None:
    """Another day's file is unreadable: the filtered read must never open it (pruned by directory name)."""
    clicks = tmp_path / "clicks"
    shutil.copytree(lake["root"] / "clicks", clicks)
    (clicks / "event_date=2024-03-03" / "zz_broken.parquet").write_bytes(b"not a parquet file")
    url = f"file://{clicks}"
    assert read_lake(url, filters=[("event_date", "=", DAYS[0])]).num_rows == 10
    with pytest.raises(pa.ArrowInvalid):  # the broken file is real: reading that day fails
        read_lake(url, filters=[("event_date", "=", DAYS[2])])
    frags = list(lake_dataset(url).get_fragments(filter=pc.field("event_date") == pa.scalar(DAYS[0])))
    assert [Path(f.path).parent.name for f in frags] == ["event_date=2024-03-01"]


def test_published_table_by_run_date(lake: dict) -> None:
    url = f"file://{lake['root'] / 'recs' / 'user_topn'}"
    t = read_lake(url, filters=[("run_date", "=", "2024-03-02")], columns=["user_id", "rank", "run_date"])
    assert t.column_names == ["user_id", "rank", "run_date"]
    assert t.num_rows == 15 and t.schema.field("run_date").type == pa.date32()
    assert set(t.column("run_date").to_pylist()) == {date(2024, 3, 2)}


def test_non_local_fsspec_backend(lake: dict) -> None:
    """The same reader on another fsspec backend (in-memory, standing in for s3:// / gs://)."""
    mem = fsspec.filesystem("memory")
    mem.put(str(lake["root"] / "clicks"), "/clickrec-test/clicks", recursive=True)
    try:
        t = read_lake("memory://clickrec-test/clicks", filters=[("event_date", "=", DAYS[2])])
        assert t.num_rows == 30 and t.schema.field("event_date").type == pa.date32()
    finally:
        mem.rm("/clickrec-test", recursive=True)


def test_unknown_protocol_is_an_error() -> None:
    with pytest.raises(ValueError, match="Protocol not known"):
        read_lake("nosuchstore://bucket/clicks")
