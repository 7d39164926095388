-- The first malformed line and DuckDB's reason, for a file none of whose lines could be read.
SELECT line, error_message FROM stage_rejects ORDER BY line LIMIT 1;
