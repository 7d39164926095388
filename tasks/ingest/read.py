"""The physical lines of a landing file, streamed as Arrow batches: the ground truth of ingest's accounting.

Every byte of the file is assigned to exactly one numbered line, split on ``\\n`` only (a trailing
``\\r`` is stripped later, in SQL, so CRLF files number their lines like everyone else; a blank line
is a line). No parser runs here, so a stray quote, a NUL or invalid UTF-8 cannot make lines vanish:
each line is a row, and whatever cannot be parsed quarantines itself alone.

The split runs in Arrow's C++ kernels over 16 MB blocks; Python only moves blocks. DuckDB scans an
Arrow *stream* on one thread, so the lines reach it as in-memory tables of about 32 MB
(:func:`line_tables`), each cut into record batches that both cores scan, and the next table is
split in a background thread while DuckDB works on the current one: the memory used is a few
tables whatever the file's size. A line longer than ``max_line_bytes`` is kept as a
bounded excerpt with ``overlong`` set, and the rest of it is skipped without being buffered.

The same read hashes the file's bytes as they come off the disk (compressed bytes for gzip), so the
sha256 recorded for a file is the digest of exactly the bytes that were ingested, at no extra read.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

SCHEMA = pa.schema([("line_no", pa.int64()), ("raw", pa.binary()), ("overlong", pa.bool_())])
EXCERPT_BYTES = 4096  # what quarantine keeps of an over-long line
BLOCK_BYTES = 16 << 20
TABLE_BYTES = 32 << 20  # lines handed to DuckDB per statement (tasks/ingest/stage.py)
# Rows per record batch of a table: DuckDB's row-group size, its unit of parallel scan.
SCAN_ROWS = 122_880


@dataclass
class LineCount:
    """Filled while the batches are consumed: physical lines, decompressed bytes, and (once the file
    is read to its end) the size and sha256 of the file as stored."""

    lines: int = 0
    bytes: int = 0
    file_bytes: int = 0
    sha256: str = ""


class _HashingReader:
    """A raw file whose every byte read also feeds a sha256 (gzip reads through it)."""

    def __init__(self, fh, count: LineCount) -> None:
        self._fh, self._count, self._hash = fh, count, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self._hash.update(data)
        self._count.file_bytes += len(data)
        return data

    def finish(self) -> None:
        """Hash whatever follows the last byte the reader asked for (gzip padding), then record the digest."""
        for block in iter(lambda: self.read(1 << 20), b""):
            del block
        self._count.sha256 = self._hash.hexdigest()


def _blocks(path: Path, compression: str, count: LineCount, block_bytes: int) -> Iterator[bytes]:
    with open(path, "rb") as raw:
        hashed = _HashingReader(raw, count)
        fh = gzip.GzipFile(fileobj=hashed, mode="rb") if compression == "gzip" else hashed
        while block := fh.read(block_bytes):
            yield block
        hashed.finish()


def _batch(first_no: int, pieces: pa.Array, max_line_bytes: int) -> pa.RecordBatch:
    lengths = pc.binary_length(pieces)
    overlong = pc.greater(lengths, max_line_bytes)
    if pc.any(overlong).as_py():
        pieces = pc.if_else(overlong, pc.binary_slice(pieces, 0, EXCERPT_BYTES), pieces)
    n = len(pieces)
    line_no = pa.array(range(first_no, first_no + n), pa.int64())
    return pa.RecordBatch.from_arrays([line_no, pieces, overlong], schema=SCHEMA)


def _single(line_no: int, raw: bytes, overlong: bool) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array([line_no], pa.int64()), pa.array([raw], pa.binary()), pa.array([overlong])], schema=SCHEMA
    )


def line_batches(
    path: Path, compression: str, max_line_bytes: int, count: LineCount, block_bytes: int = BLOCK_BYTES
) -> Iterator[pa.RecordBatch]:
    """Yield (line_no, raw, overlong) batches covering every physical line of ``path`` in order.

    A final line without a newline is a line; a file ending in ``\\n`` has no empty line after it.
    ``count`` holds the totals once the iterator is exhausted (OSError / EOFError propagate: a
    truncated gzip stream is a read error, never a silently shorter file)."""
    next_no = 1
    carry = b""  # the unfinished line at the end of the previous block
    carry_overlong = False  # carry is an excerpt of a line already longer than the limit
    for block in _blocks(path, compression, count, block_bytes):
        count.bytes += len(block)
        cut = block.rfind(b"\n")
        if cut < 0:  # no line ends in this block: it only extends the unfinished one
            if not carry_overlong:
                carry += block
                if len(carry) > max_line_bytes:
                    carry, carry_overlong = carry[:EXCERPT_BYTES], True
            continue
        if carry_overlong:
            first_nl = block.find(b"\n")
            yield _single(next_no, carry, True)
            next_no += 1
            head = block[first_nl + 1 : cut] if first_nl < cut else None
        else:
            head = carry + block[:cut]
        if head is not None:
            pieces = pc.split_pattern(pa.array([head], pa.binary()), b"\n").flatten()
            yield _batch(next_no, pieces, max_line_bytes)
            next_no += len(pieces)
        carry, carry_overlong = block[cut + 1 :], False
        if len(carry) > max_line_bytes:
            carry, carry_overlong = carry[:EXCERPT_BYTES], True
    if carry or carry_overlong:
        yield _single(next_no, carry, carry_overlong)
        next_no += 1
    count.lines = next_no - 1


def _tables(batches: Iterator[pa.RecordBatch], table_bytes: int) -> Iterator[pa.Table]:
    pending: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        pending.append(batch)
        size += batch.nbytes
        if size >= table_bytes:
            yield _scan_table(pending)
            pending, size = [], 0
    if pending:
        yield _scan_table(pending)


def _scan_table(batches: list[pa.RecordBatch]) -> pa.Table:
    """One table of consecutive lines, re-cut into SCAN_ROWS batches (slices: no copy)."""
    return pa.Table.from_batches(pa.Table.from_batches(batches, schema=SCHEMA).to_batches(max_chunksize=SCAN_ROWS),
                                 schema=SCHEMA)


def _prefetched(items: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """``items``, the next one prepared in a background thread while the caller uses the current one
    (DuckDB releases the GIL while it executes)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickrec-lines") as pool:
        pending = pool.submit(next, items, None)
        while (item := pending.result()) is not None:
            pending = pool.submit(next, items, None)
            yield item


def line_tables(path: Path, compression: str, max_line_bytes: int, count: LineCount,
                table_bytes: int = TABLE_BYTES, block_bytes: int = BLOCK_BYTES) -> Iterator[pa.Table]:
    """The lines of :func:`line_batches` as consecutive in-memory tables of about ``table_bytes``,
    each one statement's worth for DuckDB; ``count`` is complete once the iterator is exhausted."""
    return _prefetched(_tables(line_batches(path, compression, max_line_bytes, count, block_bytes), table_bytes))
