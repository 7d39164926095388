-- Canonical text fields of a Parquet file. Each row is turned into JSON so that columns are picked by
-- bound JSON pointers (p_<field>, never spliced into the SQL); source_row = 1-based Parquet row
-- number (the file's own numbering, checked against its metadata). No line is malformed here: a
-- Parquet file that cannot be read fails as a whole. Settings: getvariable('landing').
CREATE OR REPLACE TEMP VIEW landing_fields AS
WITH opt AS (
    SELECT getvariable('landing') AS o
),
src AS (
    SELECT file_row_number + 1 AS source_row, to_json(t) AS j
    FROM read_parquet(getvariable('landing').path, file_row_number = true) AS t
)
SELECT source_row,
       json_extract_string(j, CAST(o.p_session_id AS VARCHAR)) AS session_id,
       json_extract_string(j, CAST(o.p_user_id AS VARCHAR)) AS user_id,
       json_extract_string(j, CAST(o.p_item_id AS VARCHAR)) AS item_id,
       json_extract_string(j, CAST(o.p_event_type AS VARCHAR)) AS event_type,
       json_extract_string(j, CAST(o.p_category AS VARCHAR)) AS category,
       json_extract_string(j, CAST(o.p_ts AS VARCHAR)) AS ts,
       json_extract_string(j, CAST(o.p_ts_offset AS VARCHAR)) AS ts_offset,
       CAST(NULL AS VARCHAR) AS line_reason,
       CAST(NULL AS VARCHAR) AS raw_line
FROM src, opt;
