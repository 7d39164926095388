-- Stage one JSON-lines file: each line is read whole as text (the split character \x01 does not
-- occur in JSON text; a line holding it is rejected), then fields are extracted by JSON path.
-- Invalid JSON lines keep NULL fields and are flagged for quarantine by stage_text_jsonl.sql.
CREATE OR REPLACE TEMP TABLE stage_lines AS
SELECT row_number() OVER () AS ordinal, line
FROM read_csv(
    $path,
    delim = E'\x01',
    quote = '',
    escape = '',
    header = false,
    columns = {'line': 'VARCHAR'},
    compression = $compression,
    auto_detect = false,
    strict_mode = true,
    max_line_size = $max_line_size,
    store_rejects = true,
    rejects_table = 'stage_rejects',
    rejects_scan = 'stage_rejects_scan'
);
