"""Hostile input at scale: a large log with 0.1% garbage loses exactly the garbage, in bounded memory;
a file that changes while it is read is refused."""

from __future__ import annotations

import multiprocessing as mp
import resource
from pathlib import Path

import duckdb
import numpy as np
import pytest

from tasks.common.config import Home
from tasks.common.profiles import load_profile
from tasks.common.settings import get_settings
from tasks.ingest.errors import IngestError
from tasks.ingest.run import ingest
from tasks.tools.synth import write_yoochoose_days

BYTES_PER_LINE = 48  # a synthetic line with a user column, at ~21M clicks a day
GARBAGE = (
    b"%d,2014-04-01T10:00:00Z",                       # too few fields
    b"%d,2014-04-01T10:00:00Z,21\xff\xfe,0,",         # invalid UTF-8
    b"%d,yesterday-ish,214000001,0,",                 # unparseable timestamp
    b"%d,2014-04-01T10:00:00Z,ab\x00cd,0,",           # NUL inside an id
    b"%d,2014-04-01T10:00:00Z,,0,",                   # missing item id
    b"%d,1899-01-01T00:00:00Z,214000001,0,",          # absurd timestamp
)


def _poison(src: Path, dst: Path, share: float, seed: int) -> set[int]:
    """Stream ``src`` to ``dst`` replacing a ``share`` of its lines by garbage; returns the 1-based garbage lines."""
    with open(src, "rb") as fh:
        n_lines = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 24), b""))
    rng = np.random.default_rng(seed)
    bad = np.sort(rng.choice(n_lines, size=max(1, int(n_lines * share)), replace=False))
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        line_no, j = 0, 0
        for line in fin:
            if j < len(bad) and bad[j] == line_no:
                fout.write(GARBAGE[j % len(GARBAGE)] % (900_000_000 + j) + b"\n")
                j += 1
            else:
                fout.write(line)
            line_no += 1
    return {int(i) + 1 for i in bad}


def _ingest_in_child(home: str, path: str, q) -> None:
    rep = ingest(Home.resolve(home), load_profile("synthetic"), [Path(path)])
    q.put((rep.totals, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def test_large_log_with_garbage_quarantines_exactly_the_garbage(tmp_path):
    """A 1 GB log (about 21M clicks; ``CLICKREC_HOSTILE_MB`` sets another size) with 0.1% garbage."""
    rows = int(get_settings().hostile_mb * 2**20 / BYTES_PER_LINE)
    [day] = write_yoochoose_days(tmp_path / "clean", days=1, clicks_per_day=rows, seed=5, with_user=True)
    poisoned = tmp_path / "clicks-poisoned.dat"
    bad_lines = _poison(day, poisoned, share=0.001, seed=5)
    day.unlink()
    size_mb = poisoned.stat().st_size / 2**20
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    child = ctx.Process(target=_ingest_in_child, args=(str(tmp_path / "home"), str(poisoned), q))
    child.start()
    totals, peak_mb = q.get()
    child.join()
    assert child.exitcode == 0
    assert totals["rows_read"] == rows
    assert totals["rows_quarantined"] == len(bad_lines)
    assert totals["rows_accepted"] + totals["rows_duplicate"] == rows - len(bad_lines)
    con = duckdb.connect(str(tmp_path / "home" / "clickrec.duckdb"), read_only=True)
    try:
        quarantined = {r[0] for r in con.execute("SELECT source_row FROM quarantine.clicks").fetchall()}
        loaded_bad = con.execute(
            "SELECT count(*) FROM raw.clicks WHERE list_contains($bad, source_row)", {"bad": sorted(bad_lines)}
        ).fetchall()[0][0]
    finally:
        con.close()
    assert quarantined == bad_lines
    assert loaded_bad == 0
    # Streamed through DuckDB (4 GB memory limit, spilling to disk), not loaded into Python objects:
    # Python objects for 21M rows x 11 fields would need tens of GB. The bound is DuckDB's limit plus
    # room for the interpreter and GX (with pandas); it does not grow with the file.
    print(f"hostile log: {size_mb:.0f} MB, {rows} rows, {len(bad_lines)} garbage, child peak RSS {peak_mb:.0f} MB")
    assert peak_mb < 5000, peak_mb


def test_file_that_changes_while_read_is_refused(tmp_path, monkeypatch):
    from tasks.ingest import stage

    [day] = write_yoochoose_days(tmp_path / "landing", days=1, clicks_per_day=2000, seed=6, with_user=True)
    home = Home.resolve(tmp_path / "home")
    account = stage._account

    def account_and_tamper(*args):
        account(*args)
        with open(day, "ab") as fh:  # another process appends while the file is still being staged
            fh.write(b"99999999,2014-04-01T23:59:59.000Z,214000001,0,\n")

    monkeypatch.setattr(stage, "_account", account_and_tamper)
    with pytest.raises(IngestError, match="changed while being read"):
        ingest(home, load_profile("synthetic"), [day])
    assert not home.db.exists() or duckdb.connect(str(home.db), read_only=True).execute(
        "SELECT count(*) FROM raw.clicks").fetchall()[0][0] == 0
    assert not list(home.clicks_lake.rglob("*.parquet"))
