-- Canonical text columns from staged csv lines, plus each row's true line number in the file.
-- Good rows are numbered by their ordinal among good rows; adding the rejected lines that precede
-- each row (an ASOF join over the sorted reject lines) recovers its line number.
INSERT INTO stage_text BY NAME
WITH rejected AS (
    SELECT DISTINCT line - $header_lines AS data_line FROM stage_rejects
),
numbered AS (
    SELECT data_line - row_number() OVER (ORDER BY data_line) AS good_before,
           row_number() OVER (ORDER BY data_line) AS n_rejected
    FROM rejected
),
steps AS (
    SELECT good_before, max(n_rejected) AS n_rejected FROM numbered GROUP BY good_before
),
good_rows AS (
    SELECT COLUMNS(lambda c: NOT starts_with(c, '_skip')) FROM stage_lines
)
SELECT g.ordinal + coalesce(s.n_rejected, 0) + $header_lines AS source_row,
       g.* EXCLUDE (ordinal)
FROM good_rows g
ASOF LEFT JOIN steps s ON g.ordinal > s.good_before;
