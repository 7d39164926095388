-- Stage one delimited file as text. Every column is VARCHAR and named by its canonical role
-- ($columns maps position -> name; unmapped columns are named _skip_N). Malformed lines (wrong
-- column count, invalid UTF-8, over-long lines) are not fatal: DuckDB records them, with their
-- line number, in the temp table stage_rejects, and ingest quarantines them.
CREATE OR REPLACE TEMP TABLE stage_lines AS
SELECT row_number() OVER () AS ordinal, *
FROM read_csv(
    $path,
    delim = $delim,
    quote = $quote,
    escape = $quote,
    header = $header,
    columns = $columns,
    compression = $compression,
    all_varchar = true,
    auto_detect = false,
    strict_mode = true,
    null_padding = false,
    max_line_size = $max_line_size,
    store_rejects = true,
    rejects_table = 'stage_rejects',
    rejects_scan = 'stage_rejects_scan'
);
