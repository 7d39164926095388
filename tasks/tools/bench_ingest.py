"""``clickrec bench ingest``: the full ingest + validate path against a bare DuckDB COPY, same log, same run.

Each side runs in its own child process and reports its own peak RSS. The pipeline side is the
``clickrec ingest`` command's flow (its task runner stages two files at a time, as a team's run does).
Its child first pays the per-process fixed cost (imports, the Great Expectations context, Prefect's
flow machinery) on a tiny file, timed apart and printed, then ingests; ``ratio`` is the ingest's time over the bare copy's, and
``ratio_cold`` counts the fixed cost in too. ``floor`` is a third child that runs only what this
design cannot skip, with the pipeline's own code: each file's one checked pass and its lake
Parquet write (two files at a time, like the flow), then one load of the rows into ``raw.clicks``;
no dedupe, accounting, validation, lineage or publish: ``floor_ratio`` is the least ratio this
design can reach, measured in the same run. ``--days N`` writes one landing file spanning N days
(a historical backfill); without it the log is ``files`` daily files.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import resource
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

RunIngest = Callable[[str, str, str], dict]
SOURCE = "synthetic"  # the profile of the generated log (tasks.tools.synth writes its layout)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _bare(files: list[str], out: str, q) -> None:
    import duckdb

    from tasks.common.sqlfiles import sql

    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute(sql("bench/bare_copy"), {"files": files, "out": out})
    con.close()
    q.put({"seconds": time.perf_counter() - t0, "peak_mb": _peak_mb()})


def _floor_stage(path: str, root: Path, i: int) -> tuple[list[str], float, float]:
    """One file of the floor: the stage's own checked pass, then its own lake write (no dedupe)."""
    from tasks.common.profiles import load_profile
    from tasks.common.sqlfiles import sql
    from tasks.ingest.landing import compression_of, file_id_of
    from tasks.ingest.stage import FileReport, checked_pass, open_batch, write_lake

    f = Path(path)
    report = FileReport(source_file=f.name, path=str(f), sha256="", size_bytes=0, file_id=file_id_of(f))
    out = root / "floor-lake" / str(i)
    out.parent.mkdir(parents=True, exist_ok=True)  # DuckDB creates the partition folders, not their parents
    con = open_batch(root / "floor-spill")
    try:
        checked_pass(con, f, load_profile(SOURCE), compression_of(f), None, False, report)
        con.execute(sql("staging/duplicates"), {"dedupe": False})  # an empty table: the floor drops nothing
        write_lake(con, "floor", None, report, out)
    finally:
        con.close()
    seconds = report.seconds
    return [str(p) for p in sorted(out.glob("event_date=*/*.parquet"))], seconds["read_type_check"], seconds["write_lake"]


def _floor(files: list[str], root: str, warm: str, q) -> None:
    """The least this design can do, with the pipeline's own code: every file's one checked pass
    (read, type, check: ``stage.checked_pass``) and its lake Parquet write (``staging/write_lake.sql``),
    two files at a time as the flow stages them, then one load of every file's rows into
    ``raw.clicks`` (the commit's ``staging/insert_accepted.sql``). Nothing else: no dedupe,
    accounting, scratch files, validation, lineage records, publish or Prefect."""
    from concurrent.futures import ThreadPoolExecutor

    from tasks.common.config import Home
    from tasks.common.sqlfiles import sql
    from tasks.common.warehouse import connect

    base = Path(root)
    _floor_stage(warm, base / "floor-warm", 0)  # the first pass of a process, untimed, like the pipeline's warm run
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        staged = list(pool.map(_floor_stage, files, [base] * len(files), range(len(files))))
    stage = time.perf_counter() - t0
    home = Home(base / "floor-home")
    con = connect(home)
    try:
        t1 = time.perf_counter()
        parts = [p for paths, _, _ in staged for p in paths]
        con.execute(sql("staging/insert_accepted"), {"files": parts})
        table = time.perf_counter() - t1
        [(rows,)] = con.execute(sql("bench/floor_rows")).fetchall()
    finally:
        con.close()
    total = time.perf_counter() - t0
    q.put({"seconds": total, "rows": rows, "stage": stage, "table": table,
           "checked_pass_summed": sum(s for _, s, _ in staged), "lake_summed": sum(w for _, _, w in staged),
           "peak_mb": _peak_mb()})


def _pipeline(run: RunIngest, landing: str, home: str, warm: str, q) -> None:
    """The command a team runs (``run``: ``clickrec ingest``'s flow, with its task runner), timed twice:
    a first run on a tiny file pays the per-process fixed cost (imports, the GX context, Prefect's
    flow machinery), then the measured run."""
    t0 = time.perf_counter()
    run(SOURCE, warm, str(Path(home).with_name("warm-home")))
    fixed = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = run(SOURCE, landing, home)
    seconds = time.perf_counter() - t0
    stages: dict[str, float] = defaultdict(float)
    for f in report["files"]:
        for step, s in f["seconds"].items():
            stages[step] += s
    stages.update(report["seconds"])
    q.put({"seconds": seconds, "fixed": fixed, "totals": report["totals"], "stages": dict(stages),
           "peak_mb": _peak_mb()})


def _run_child(target, *args) -> dict:
    """Run ``target`` in a fresh process and return what it reports; a child that dies without
    reporting fails the bench with its exit code instead of leaving the parent waiting forever."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    result = None
    while result is None:
        try:
            result = q.get(timeout=1.0)
        except queue.Empty:
            if not p.is_alive() and q.empty():
                break
    p.join()
    if result is None or p.exitcode != 0:
        raise RuntimeError(f"benchmark child {target.__name__} failed with exit code {p.exitcode}")
    return result


def _landing(root: Path, rows: int, days: int | None, files: int) -> list[Path]:
    """``files`` daily files in ``root/days``, or (``days`` given) one file spanning ``days`` days."""
    from tasks.tools.synth import write_yoochoose_days

    n_days = max(1, min(days or files, rows // 100))
    daily = write_yoochoose_days(root / "days", days=n_days, clicks_per_day=rows // n_days, seed=0, with_user=True)
    if days is None:
        return daily
    one = root / "landing" / f"clicks-{n_days}-days.dat"
    one.parent.mkdir(parents=True, exist_ok=True)
    with open(one, "wb") as out:
        for f in daily:
            with open(f, "rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 24)
            f.unlink()
    return [one]


def bench_ingest(run: RunIngest, rows: int = 10_000_000, workdir: Path | None = None, days: int | None = None,
                 files: int = 10) -> dict:
    """``run(source, path, home) -> report dict`` is the ingest command under test (the CLI passes
    ``flows.ingest.run_ingest_command``: this module, like every task module, imports no flow)."""
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="clickrec-bench-")) if own else Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        landing = [str(f) for f in _landing(root, rows, days, files)]
        [warm] = _landing(root / "warm", 1000, None, 1)
        gen_s = time.perf_counter() - t0
        # The command takes the landing folder (the daily files) or the one file, as a team passes it.
        command_path = landing[0] if days else str(root / "days")
        pipe = _run_child(_pipeline, run, command_path, str(root / "home"), str(warm))
        bare = _run_child(_bare, landing, str(root / "bare.parquet"))
        floor = _run_child(_floor, landing, str(root), str(warm))
        return {
            "rows": pipe["totals"]["rows_read"],
            "files": len(landing),
            "days": days,
            "input_mb": round(sum(Path(f).stat().st_size for f in landing) / 2**20, 1),
            "generate_seconds": round(gen_s, 2),
            "bare_seconds": round(bare["seconds"], 3),
            "pipeline_seconds": round(pipe["seconds"], 3),
            "fixed_seconds": round(pipe["fixed"], 3),
            "ratio": round(pipe["seconds"] / bare["seconds"], 3),
            "ratio_cold": round((pipe["seconds"] + pipe["fixed"]) / bare["seconds"], 3),
            "floor_seconds": round(floor["seconds"], 3),
            "floor_rows": floor["rows"],
            "floor_ratio": round(floor["seconds"] / bare["seconds"], 3),
            "floor_steps": {k: round(floor[k], 3) for k in ("stage", "table", "checked_pass_summed", "lake_summed")},
            "peak_rss_mb": round(pipe["peak_mb"], 1),
            "bare_peak_rss_mb": round(bare["peak_mb"], 1),
            "stage_seconds": {k: round(v, 3) for k, v in pipe["stages"].items()},
            "rows_accepted": pipe["totals"]["rows_accepted"],
            "rows_quarantined": pipe["totals"]["rows_quarantined"],
        }
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)


def format_result(r: dict) -> str:
    """The bench's printed lines: the comparison, then where the pipeline's time went."""
    span = f"  days={r['days']}" if r["days"] else ""
    stages = "  ".join(f"{k}={v:.2f}s" for k, v in r["stage_seconds"].items())
    floor_steps = ", ".join(f"{k} {v:.2f}s" for k, v in r["floor_steps"].items())
    return (
        f"rows={r['rows']:,}  files={r['files']}{span}  bare={r['bare_seconds']:.2f}s  "
        f"pipeline={r['pipeline_seconds']:.2f}s  ratio={r['ratio']:.2f}  peak_rss={r['peak_rss_mb']:.0f} MB\n"
        f"fixed per process (imports, GX context, first flow run; paid once)={r['fixed_seconds']:.2f}s  "
        f"ratio_cold={r['ratio_cold']:.2f}  bare_peak_rss={r['bare_peak_rss_mb']:.0f} MB\n"
        f"stages (summed over files, two staged at a time): {stages}\n"
        f"floor (checked pass + lake write per file, two at a time, then the raw.clicks load: {floor_steps})"
        f"={r['floor_seconds']:.2f}s  "
        f"floor_ratio={r['floor_ratio']:.2f}"
    )
