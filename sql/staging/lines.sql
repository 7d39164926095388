-- The landing file's physical lines (tasks/ingest/read.py streams them as Arrow batches under the
-- fixed name landing_lines), decoded once: invalid UTF-8 -> NULL text, one trailing CR stripped (CRLF
-- files), every line kept, blank ones included, so line numbers are exact. A view: the one statement
-- that builds staging.batch (batch.sql) reads the stream once and nothing else is materialised. The
-- 2 MiB below is tasks.ingest.formats.MAX_LINE_BYTES.
CREATE OR REPLACE TEMP VIEW stage_lines AS
WITH decoded AS (
    SELECT line_no, overlong, raw, try(decode(raw)) AS txt
    FROM landing_lines
)
SELECT line_no,
       CASE WHEN ends_with(txt, chr(13)) THEN txt[:-2] ELSE txt END AS line,
       CASE
           WHEN overlong THEN 'malformed line: longer than the 2 MiB line limit'
           WHEN txt IS NULL THEN 'malformed line: invalid UTF-8'
           WHEN contains(txt, chr(0)) THEN 'malformed line: NUL byte'
       END AS bad_bytes,
       -- a bounded, printable excerpt for quarantine (BLOB text escapes bad bytes as \xNN)
       left(CASE WHEN txt IS NULL OR contains(txt, chr(0)) THEN raw::VARCHAR ELSE txt END, 4096) AS excerpt
FROM decoded;
