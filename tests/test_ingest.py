"""Ingest on real DuckDB files with the real Great Expectations suite: good data, bad data, idempotence."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tasks.common.config import Home, UserInputError, parse_day
from tasks.common.profiles import ProfileError, load_profile, parse_profile
from tasks.ingest.errors import IngestError
from tasks.ingest.run import ingest

GOOD = [
    "1,2014-04-07T10:51:09.277Z,214536502,0",
    "1,2014-04-07T10:54:09.358Z,214536500,0",
    "2,2014-04-07T13:56:37.614Z,214662742,0",
    "2,2014-04-07T13:57:19.373Z,214662742,0",
    "3,2014-04-08T09:01:00.000Z,214825110,S",
]


def write(path: Path, lines: list[str] | bytes, gz: bool = False) -> Path:
    data = lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def rows(home: Home, query: str = "SELECT * FROM raw.clicks ORDER BY source_file, source_row") -> list[tuple]:
    con = duckdb.connect(str(home.db), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def q1(home: Home, query: str):
    return rows(home, query)[0][0]


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home.resolve(tmp_path / "home")


@pytest.fixture
def yoo():
    return load_profile("yoochoose")


def test_good_file_lands_in_lake_and_table(home, yoo, tmp_path):
    f = write(tmp_path / "clicks.dat", GOOD)
    rep = ingest(home, yoo, [f])
    assert rep.totals == {"rows_read": 5, "rows_accepted": 5, "rows_quarantined": 0, "rows_duplicate": 0,
                          "rows_other_days": 0, "rows_filtered": 0, "rows_blank": 0}
    assert rep.days_written == ["2014-04-07", "2014-04-08"]
    got = rows(home, "SELECT session_id, item_id, ts::VARCHAR, event_date::VARCHAR, source_row FROM raw.clicks ORDER BY source_row")
    assert got[0] == ("1", "214536502", "2014-04-07 10:51:09.277", "2014-04-07", 1)
    assert [r[4] for r in got] == [1, 2, 3, 4, 5]
    lake = sorted(p.relative_to(home.clicks_lake).parts[0] for p in home.clicks_lake.rglob("*.parquet"))
    assert lake == ["event_date=2014-04-07", "event_date=2014-04-08"]
    n_lake = duckdb.execute("SELECT count(*) FROM read_parquet($g)", {"g": f"{home.clicks_lake}/*/*.parquet"}).fetchall()[0][0]
    assert n_lake == 5


def test_reingest_is_idempotent_and_other_days_untouched(home, yoo, tmp_path):
    a = write(tmp_path / "a.dat", GOOD)
    b = write(tmp_path / "b.dat", ["9,2014-04-09T10:00:00Z,1,0", "9,2014-04-09T10:01:00Z,2,0"])
    ingest(home, yoo, [a, b])
    before = rows(home, "SELECT * EXCLUDE (run_id, ingested_at) FROM raw.clicks ORDER BY ALL")
    ingest(home, yoo, [a])
    after = rows(home, "SELECT * EXCLUDE (run_id, ingested_at) FROM raw.clicks ORDER BY ALL")
    assert before == after
    # Replacing a day with --date keeps exactly the new file's rows for that day, nothing else changes.
    c = write(tmp_path / "c.dat", ["7,2014-04-07T11:00:00Z,42,0"])
    rep = ingest(home, yoo, [c], day=date(2014, 4, 7))
    assert rep.totals["rows_accepted"] == 1
    by_day = dict(rows(home, "SELECT event_date::VARCHAR, count(*) FROM raw.clicks GROUP BY 1"))
    assert by_day == {"2014-04-07": 1, "2014-04-08": 1, "2014-04-09": 2}
    files = sorted(p.name.split("-")[0] for p in (home.clicks_lake / "event_date=2014-04-07").glob("*.parquet"))
    assert files == ["c.dat"]


def test_bad_rows_are_quarantined_exactly_and_accounting_holds(home, yoo, tmp_path):
    lines = GOOD + [
        "4,not-a-time,214536502,0",            # line 6: unparseable timestamp
        "5,2500-01-01T00:00:00Z,214536502,0",  # line 7: absurd timestamp
        "6,2014-04-07T10:00:00Z,,0",           # line 8: missing item id
        "7,2014-04-07T10:00:00Z",              # line 9: too few columns
        "1,2014-04-07T10:51:09.277Z,214536502,0",  # line 10: exact duplicate of line 1
    ]
    f = write(tmp_path / "mixed.dat", lines)
    rep = ingest(home, yoo, [f])
    fr = rep.files[0]
    assert (fr.rows_read, fr.rows_accepted, fr.rows_quarantined, fr.rows_duplicate) == (10, 5, 4, 1)
    q = rows(home, "SELECT source_row, reason FROM quarantine.clicks ORDER BY source_row")
    assert [r[0] for r in q] == [6, 7, 8, 9]
    assert "ts" in q[0][1] and "ts" in q[1][1] and "item_id" in q[2][1] and "malformed" in q[3][1]
    rec = rows(home, "SELECT rows_read, rows_accepted, rows_quarantined, rows_duplicate FROM ops.ingest_files")
    assert rec == [(10, 5, 4, 1)]
    assert q1(home, "SELECT count(*) FROM ops.validation_results") > 0


@pytest.mark.parametrize(
    "ident",
    ["it'em", 'it"em', "a;b", "x'; DROP TABLE raw.clicks; --", "상품-42", "🛒🎧", "tab\\tlike"],
)
def test_hostile_and_unicode_ids_kept_byte_exact(home, tmp_path, ident):
    prof = parse_profile({"format": "jsonl", "fields": {"session_id": "s", "item_id": "i", "ts": "t"},
                          "timestamp": {"kind": "unix_s"}})
    import json

    f = write(tmp_path / "x.jsonl", [json.dumps({"s": "1", "i": ident, "t": 1396310400}),
                                     json.dumps({"s": "1", "i": "ok", "t": 1396310401})])
    ingest(home, prof, [f])
    got = rows(home, "SELECT item_id FROM raw.clicks ORDER BY source_row")
    assert got[0][0].encode() == ident.encode()
    assert q1(home, "SELECT count(*) FROM raw.clicks") == 2  # the DROP TABLE text did nothing


def test_non_utf8_nul_and_huge_lines_are_quarantined_not_fatal(home, yoo, tmp_path):
    data = ("\n".join(GOOD[:2]) + "\n").encode()
    data += b"8,2014-04-07T10:00:00Z,21\xff\xfe45,0\n"               # line 3: invalid UTF-8
    data += b"9,2014-04-07T10:00:00Z,ab\x00cd,0\n"                   # line 4: NUL inside an id
    data += b"10,2014-04-07T10:00:00Z," + b"x" * (10 * 2**20) + b",0\n"  # line 5: a 10 MB line
    data += (GOOD[2] + "\n").encode()                                   # line 6: good
    f = write(tmp_path / "nasty.dat", data)
    rep = ingest(home, yoo, [f])
    assert rep.totals["rows_accepted"] == 3
    assert [r[0] for r in rows(home, "SELECT source_row FROM quarantine.clicks ORDER BY 1")] == [3, 4, 5]
    assert [r[0] for r in rows(home, "SELECT source_row FROM raw.clicks ORDER BY 1")] == [1, 2, 6]
    longest = q1(home, "SELECT max(length(raw_line)) FROM quarantine.clicks")
    assert longest is None or longest <= 4096  # quarantine keeps a bounded excerpt, not 10 MB


@pytest.mark.parametrize(
    ("content", "gz", "needle"),
    [
        (b"", False, "empty"),
        (b"\x1f\x8bthis is not gzip", False, "cannot read"),
        (gzip.compress(("\n".join(GOOD) + "\n").encode())[:30], False, "cannot read"),
        (b"1;2014-04-07T10:51:09Z;214536502;0\n2;2014-04-07T10:51:09Z;2;0\n", False, "no line could be read"),
    ],
    ids=["empty", "fake-gzip", "truncated-gzip", "wrong-delimiter"],
)
def test_unreadable_files_give_one_line_error_and_write_nothing(home, yoo, tmp_path, content, gz, needle):
    good = write(tmp_path / "good.dat", GOOD)
    bad = tmp_path / "bad.dat.gz" if content[:2] == b"\x1f\x8b" else tmp_path / "bad.dat"
    bad.write_bytes(content)
    with pytest.raises(IngestError) as err:
        ingest(home, yoo, [good, bad])
    msg = str(err.value)
    assert "\n" not in msg and bad.name in msg and needle in msg
    # The good file of the failed run was not published either: no half-written run.
    assert not home.db.exists() or q1(home, "SELECT count(*) FROM raw.clicks") == 0
    assert list(home.clicks_lake.rglob("*.parquet")) == []


def test_header_problems(home, tmp_path):
    prof = load_profile("sessionrec")
    header_only = write(tmp_path / "h.txt", ["SessionId\tItemId\tTime"])
    with pytest.raises(IngestError, match="no data rows"):
        ingest(home, prof, [header_only])
    missing = write(tmp_path / "m.txt", ["SessionId\tTime", "1\t1396310400"])
    with pytest.raises(IngestError, match=r"line 1: missing required column.*ItemId"):
        ingest(home, prof, [missing])
    comma = write(tmp_path / "c.txt", ["SessionId,ItemId,Time", "1,2,1396310400"])
    with pytest.raises(IngestError, match="missing required column"):
        ingest(home, prof, [comma])


def test_gzip_parquet_and_custom_profiles_need_no_code(home, tmp_path):
    gzf = write(tmp_path / "day.dat.gz", GOOD, gz=True)
    assert ingest(home, load_profile("yoochoose"), [gzf]).totals["rows_accepted"] == 5
    pq = tmp_path / "ev.parquet"
    duckdb.execute(
        "COPY (SELECT 'u' || (i % 3) AS who, 'item' || i AS what, 'view' AS kind, "
        "TIMESTAMP '2020-02-02 10:00:00' + i * INTERVAL 1 MINUTE AS at FROM range(10) t(i)) "
        "TO $p (FORMAT parquet)",
        {"p": str(pq)},
    )
    toml = tmp_path / "shop.toml"
    toml.write_text(
        'name = "shop"\nformat = "parquet"\n[fields]\nuser_id = "who"\nitem_id = "what"\nevent_type = "kind"\nts = "at"\n'
        '[timestamp]\nkind = "iso8601"\ntimezone = "UTC"\n'
    )
    rep = ingest(home, load_profile(str(toml)), [pq])
    assert rep.totals["rows_accepted"] == 10
    assert rows(home, "SELECT DISTINCT event_type FROM raw.clicks WHERE source_file = 'ev.parquet'") == [("view",)]
    assert q1(home, "SELECT count(DISTINCT user_id) FROM raw.clicks WHERE source_file = 'ev.parquet'") == 3


def test_timezone_and_epoch_units(home, tmp_path):
    prof = parse_profile({"format": "csv", "delimiter": "|", "header": True,
                          "fields": {"user_id": "u", "item_id": "i", "ts": "t"},
                          "timestamp": {"kind": "strptime", "format": "%d/%m/%Y %H:%M", "timezone": "Asia/Seoul"}})
    f = write(tmp_path / "kr.psv", ["u|i|t", "a|1|07/04/2014 09:30"])
    ingest(home, prof, [f])
    assert rows(home, "SELECT ts::VARCHAR FROM raw.clicks") == [("2014-04-07 00:30:00",)]


def test_bad_arguments_and_profiles_are_refused():
    for bad in ("../../etc", "2014-4-7", "2014-02-30", "2014-04-07/../x", ""):
        with pytest.raises(UserInputError):
            parse_day(bad)
    home = Home.resolve("/tmp/clickrec-home-test")
    with pytest.raises(UserInputError, match="escapes the home folder"):
        home.inside(home.root / ".." / "elsewhere")
    with pytest.raises(ProfileError, match="unknown source profile"):
        load_profile("../../etc/passwd")
    with pytest.raises(ProfileError, match="must map 'ts'"):
        parse_profile({"format": "csv", "header": True, "fields": {"item_id": "a", "session_id": "b"}})


@pytest.mark.shared
def test_rsc15_acceptance_counts(home, shared_data):
    d = shared_data / "rsc15-100k"
    files = [d / "yoochoose-clicks-100k_train_full.txt", d / "yoochoose-clicks-100k_test.txt"]
    prof = load_profile("sessionrec")
    for _ in range(2):  # doing it again changes no count
        ingest(home, prof, files)
        by_day = rows(home, "SELECT event_date::VARCHAR, count(*) FROM raw.clicks GROUP BY 1 ORDER BY 1")
        assert [d for d, _ in by_day] == [f"2014-04-0{i}" for i in range(1, 9)]
        assert sum(n for _, n in by_day) == 83_846
        assert q1(home, "SELECT count(*) FROM quarantine.clicks") == 0
    lake_days = sorted(p.name for p in home.clicks_lake.iterdir())
    assert len(lake_days) == 8


@pytest.mark.shared
def test_movielens_acceptance_counts(home, shared_data):
    ingest(home, load_profile("movielens"), [shared_data / "ml-100k" / "ml-100k.inter"])
    assert rows(home, "SELECT count(*), count(user_id), count(DISTINCT user_id) FROM raw.clicks") == [(100_000, 100_000, 943)]
