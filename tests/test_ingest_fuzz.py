"""Seeded fuzz test of ingest's accounting: random mixes of good and bad lines in each line format
land exactly their good rows, and read = accepted + quarantined + duplicates + blank holds against
the physical line count the test itself wrote.

``CLICKREC_FUZZ_EXAMPLES`` sets the number of files per format (CI: 8; e.g. 200 for a long soak).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tasks.common.config import Home
from tasks.common.profiles import parse_profile
from tasks.common.settings import get_settings
from tasks.ingest.run import ingest

EXAMPLES = get_settings().fuzz_examples
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

CSV = parse_profile({
    "name": "fuzz-csv", "format": "csv", "header": True, "delimiter": ",",
    "fields": {"session_id": "s", "item_id": "i", "ts": "t", "category": "c"},
    "timestamp": {"kind": "iso8601"},
})
JSONL = parse_profile({
    "name": "fuzz-jsonl", "format": "jsonl",
    "fields": {"session_id": "s", "item_id": "i", "ts": "t"}, "timestamp": {"kind": "unix_s"},
})
# kind -> what it must become: accepted, quarantined, duplicate or blank
CSV_KINDS = {
    "good": "accepted", "good_quoted": "accepted", "good_crlf": "accepted", "dup": "duplicate",
    "stray_quote": "quarantined", "few_fields": "quarantined", "many_fields": "quarantined",
    "bad_utf8": "quarantined", "nul": "quarantined", "bad_ts": "quarantined", "no_item": "quarantined",
    "blank": "blank", "blank_crlf": "blank",
}
JSONL_KINDS = {
    "good": "accepted", "good_crlf": "accepted", "dup": "duplicate", "bad_json": "quarantined",
    "not_object": "quarantined", "bad_utf8": "quarantined", "nul": "quarantined", "bad_ts": "quarantined",
    "blank": "blank",
}


def _csv_line(kind: str, n: int, last_good: bytes | None) -> bytes:
    ts = f"2014-04-07T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"
    return {
        "good": f"{n},item{n},{ts},c{n % 7}".encode(),
        "good_quoted": f'{n},"it,em ""{n}""",{ts},"cat, {n}"'.encode(),
        "good_crlf": f"{n},item{n},{ts},c\r".encode(),
        "stray_quote": f'"{n},item{n},{ts},c'.encode(),
        "few_fields": f"{n},item{n},{ts}".encode(),
        "many_fields": f"{n},item{n},{ts},c,extra".encode(),
        "bad_utf8": f"{n},item{n}".encode() + b"\xff\xfe" + f",{ts},c".encode(),
        "nul": f"{n},item\x00{n},{ts},c".encode(),
        "bad_ts": f"{n},item{n},not-a-time,c".encode(),
        "no_item": f"{n},,{ts},c".encode(),
        "blank": b"",
        "blank_crlf": b"\r",
    }.get(kind, last_good or b"")


def _jsonl_line(kind: str, n: int, last_good: bytes | None) -> bytes:
    good = json.dumps({"s": str(n), "i": f"item{n}", "t": 1396828800 + n}).encode()
    return {
        "good": good,
        "good_crlf": good + b"\r",
        "bad_json": b'{"s": "' + str(n).encode() + b'", "i": ',
        "not_object": b"[1, 2, 3]",
        "bad_utf8": b'{"s": "1", "i": "x\xff", "t": 1396828800}',
        "nul": b'{"s": "1", "i": "x\x00y", "t": 1396828800}',
        "bad_ts": json.dumps({"s": str(n), "i": f"item{n}", "t": "soon"}).encode(),
        "blank": b"",
    }.get(kind, last_good or b"")


def _check(profile, kinds_map: dict[str, str], line_of, kinds: list[str], final_newline: bool) -> None:
    header = [b"s,i,t,c"] if profile.format == "csv" else []
    lines: list[bytes] = []
    expect = {"accepted": set(), "quarantined": set(), "duplicate": set(), "blank": set()}
    last_good = None
    offset = len(header)
    if not final_newline and kinds_map[kinds[-1]] == "blank" and line_of(kinds[-1], 0, None) == b"":
        final_newline = True  # "...\n" + "" is a file ending in a newline, not one more (blank) line
    for n, kind in enumerate(kinds, start=1):
        # A duplicate needs an earlier good line, and the file must stay under the suite's maximum
        # duplicate rate (0.5, a table-level expectation that would refuse it whole).
        if kind == "dup" and (last_good is None or len(expect["duplicate"]) + 1 > len(expect["accepted"])):
            kind = "good"
        line = line_of(kind, n, last_good)
        lines.append(line)
        expect[kinds_map[kind]].add(n + offset)
        if kinds_map[kind] == "accepted" and not line.endswith(b"\r"):
            last_good = line
    data = b"\n".join(header + lines) + (b"\n" if final_newline else b"")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz.{profile.format}"
        path.write_bytes(data)
        physical = data.count(b"\n") + (0 if final_newline else 1) - len(header)  # counted here, not by ingest
        home = Home.resolve(Path(tmp) / "home")
        rep = ingest(home, profile, [path]).files[0]
        assert rep.rows_read == physical == len(kinds)
        assert (rep.rows_accepted, rep.rows_quarantined, rep.rows_duplicate, rep.rows_blank) == tuple(
            len(expect[k]) for k in ("accepted", "quarantined", "duplicate", "blank"))
        con = duckdb.connect(str(home.db), read_only=True)
        try:
            loaded = {r for (r,) in con.execute("SELECT source_row FROM raw.clicks").fetchall()}
            quarantined = {r for (r,) in con.execute("SELECT source_row FROM quarantine.clicks").fetchall()}
        finally:
            con.close()
        assert loaded == expect["accepted"]
        assert quarantined == expect["quarantined"]


def _kinds(kinds_map: dict[str, str]):
    good = st.sampled_from([k for k, v in kinds_map.items() if v == "accepted"])
    # At least one good line, so the file is never refused as a whole.
    return st.tuples(good, st.lists(st.sampled_from(sorted(kinds_map)), min_size=0, max_size=60)).map(
        lambda t: [t[0], *t[1]])


@seed(20261202)
@FUZZ
@given(kinds=_kinds(CSV_KINDS), final_newline=st.booleans())
def test_fuzz_csv_lands_exactly_the_good_rows(kinds, final_newline):
    _check(CSV, CSV_KINDS, _csv_line, kinds, final_newline)


@seed(20261202)
@FUZZ
@given(kinds=_kinds(JSONL_KINDS), final_newline=st.booleans())
def test_fuzz_jsonl_lands_exactly_the_good_rows(kinds, final_newline):
    _check(JSONL, JSONL_KINDS, _jsonl_line, kinds, final_newline)
