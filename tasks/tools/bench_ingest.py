"""``clickrec bench ingest``: the full ingest + validate path against a bare DuckDB COPY, same log, same run.

Each side runs in its own child process so that its peak RSS is its own (``RUSAGE_CHILDREN`` is
read right after each child is reaped, pipeline first, so the bare side cannot mask it).
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import shutil
import tempfile
import time
from pathlib import Path


def _bare(files: list[str], out: str, q) -> None:
    import duckdb

    from tasks.common.sqlfiles import sql

    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute(sql("bench/bare_copy"), {"files": files, "out": out})
    con.close()
    q.put(time.perf_counter() - t0)


def _pipeline(files: list[str], home: str, q) -> None:
    from tasks.common.config import Home
    from tasks.common.profiles import load_profile
    from tasks.ingest.files import ingest

    t0 = time.perf_counter()
    report = ingest(Home.resolve(home), load_profile("synthetic"), [Path(f) for f in files])
    q.put((time.perf_counter() - t0, report.totals))


def _run_child(target, *args):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    result = q.get()
    p.join()
    if p.exitcode != 0:
        raise RuntimeError(f"benchmark child {target.__name__} failed with exit code {p.exitcode}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return result, peak_mb


def bench_ingest(rows: int = 10_000_000, workdir: Path | None = None, days: int = 10) -> dict:
    from tasks.tools.synth import write_yoochoose_days

    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="clickrec-bench-")) if own else Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    try:
        days = max(1, min(days, rows // 1000))
        t0 = time.perf_counter()
        files = write_yoochoose_days(root / "landing", days=days, clicks_per_day=rows // days, seed=0, with_user=True)
        gen_s = time.perf_counter() - t0
        files = [str(f) for f in files]
        (pipe_s, totals), pipe_peak = _run_child(_pipeline, files, str(root / "home"))
        bare_s, bare_peak = _run_child(_bare, files, str(root / "bare.parquet"))
        return {
            "rows": (rows // days) * days,
            "files": len(files),
            "input_mb": round(sum(Path(f).stat().st_size for f in files) / 2**20, 1),
            "generate_seconds": round(gen_s, 2),
            "bare_seconds": round(bare_s, 3),
            "pipeline_seconds": round(pipe_s, 3),
            "ratio": round(pipe_s / bare_s, 3),
            "peak_rss_mb": round(pipe_peak, 1),
            "bare_peak_rss_mb": round(bare_peak, 1),
            "rows_accepted": totals["rows_accepted"],
            "rows_quarantined": totals["rows_quarantined"],
        }
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)
