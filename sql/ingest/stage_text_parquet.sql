-- Canonical text columns from a Parquet file. Each row is turned into JSON so that columns are
-- picked by bound JSON pointers (never spliced into the SQL); row = 1-based Parquet row number
-- (the file's own row numbering, so the count is checked against the file's metadata).
INSERT INTO stage_text BY NAME
WITH numbered AS (
    SELECT * FROM read_parquet($path, file_row_number = true)
),
src AS (
    SELECT file_row_number + 1 AS source_row, to_json(t) AS j
    FROM (SELECT * FROM numbered) t
)
SELECT source_row,
       json_extract_string(j, $p_session_id) AS session_id,
       json_extract_string(j, $p_user_id) AS user_id,
       json_extract_string(j, $p_item_id) AS item_id,
       json_extract_string(j, $p_event_type) AS event_type,
       json_extract_string(j, $p_category) AS category,
       json_extract_string(j, $p_ts) AS ts,
       json_extract_string(j, $p_ts_offset) AS ts_offset
FROM src;
