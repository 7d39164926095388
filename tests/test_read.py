"""The physical-line reader (tasks/ingest/read.py) as the one pass consumes it: consecutive in-memory
tables, prepared in a background thread. Whatever the block and table sizes, every byte of the file
is in exactly one numbered line, in order, and the digest is the file's."""

from __future__ import annotations

import gzip
import hashlib
import random
from pathlib import Path

import pyarrow as pa
import pytest

from tasks.ingest.read import SCAN_ROWS, LineCount, line_tables

# Bytes a hostile log holds: quotes, CR, NUL, invalid UTF-8, blank lines, a separator-only line.
PIECES = [b"1,2014-04-01T00:00:00Z,i1,0,s", b'"', b"\r", b"\x00", b"\xff\xfe", b"", b",,,,", b"x" * 300]


def hostile_bytes(seed: int, lines: int) -> bytes:
    rng = random.Random(seed)
    return b"\n".join(b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 4))) for _ in range(lines))


def expected_lines(data: bytes) -> list[bytes]:
    """The definition, independently of the reader: split on \\n; a final \\n ends the last line."""
    lines = data.split(b"\n")
    return lines[:-1] if data.endswith(b"\n") else lines


def read_all(path: Path, compression: str = "none", **sizes) -> tuple[list[pa.Table], LineCount]:
    count = LineCount()
    return list(line_tables(path, compression, 200, count, **sizes)), count


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("block_bytes,table_bytes", [(7, 1), (64, 500), (1 << 20, 1 << 20)])
def test_every_byte_is_in_one_numbered_line_whatever_the_sizes(tmp_path, seed, block_bytes, table_bytes):
    data = hostile_bytes(seed, 400) + (b"\n" if seed % 2 else b"")
    path = tmp_path / "clicks.dat"
    path.write_bytes(data)
    tables, count = read_all(path, block_bytes=block_bytes, table_bytes=table_bytes)
    rows = [r for t in tables for r in t.to_pylist()]
    want = expected_lines(data)
    assert [r["line_no"] for r in rows] == list(range(1, len(want) + 1))
    # A line over the 200-byte limit is flagged and kept as a start of it (past the limit, at most
    # 4 KiB); every other line whole.
    assert [r["raw"] if not r["overlong"] else None for r in rows] == [w if len(w) <= 200 else None for w in want]
    assert all(w.startswith(r["raw"]) and 200 < len(r["raw"]) <= 4096
               for r, w in zip(rows, want, strict=True) if r["overlong"])
    assert count.lines == len(want) and count.file_bytes == len(data)
    assert count.sha256 == hashlib.sha256(data).hexdigest()
    if table_bytes < 1 << 20:
        assert len(tables) > 1  # several statements' worth, handed over one after another
    assert all(b.num_rows <= SCAN_ROWS for t in tables for b in t.to_batches())


def test_gzip_lines_and_the_digest_of_the_stored_bytes(tmp_path):
    data = hostile_bytes(7, 300) + b"\n"
    path = tmp_path / "clicks.dat.gz"
    path.write_bytes(gzip.compress(data))
    tables, count = read_all(path, "gzip", block_bytes=50, table_bytes=100)
    assert [r["line_no"] for t in tables for r in t.to_pylist()] == list(range(1, len(expected_lines(data)) + 1))
    assert count.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_read_error_in_the_background_thread_reaches_the_caller(tmp_path, monkeypatch):
    """The flow retries an OSError while reading: it must surface, never end the file early."""
    path = tmp_path / "clicks.dat"
    path.write_bytes(hostile_bytes(1, 2000))
    import tasks.ingest.read as read

    real = read._HashingReader.read
    calls = {"n": 0}

    def failing(self, n=-1):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("injected: device went away")
        return real(self, n)

    monkeypatch.setattr(read._HashingReader, "read", failing)
    with pytest.raises(OSError, match="device went away"):
        read_all(path, block_bytes=64, table_bytes=64)
