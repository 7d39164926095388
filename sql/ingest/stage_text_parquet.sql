-- Canonical text columns from a Parquet file. Each row is turned into JSON so that columns are
-- picked by bound JSON pointers (never spliced into the SQL); row = 1-based Parquet row number.
INSERT INTO stage_text BY NAME
WITH src AS (
    SELECT row_number() OVER () AS source_row, to_json(t) AS j FROM read_parquet($path) t
)
SELECT source_row,
       json_extract_string(j, $p_session_id) AS session_id,
       json_extract_string(j, $p_user_id) AS user_id,
       json_extract_string(j, $p_item_id) AS item_id,
       json_extract_string(j, $p_event_type) AS event_type,
       json_extract_string(j, $p_category) AS category,
       json_extract_string(j, $p_ts) AS ts
FROM src;
