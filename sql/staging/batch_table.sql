-- staging.batch, empty: the one pass (batch.sql) appends every landing line to it, one chunk of
-- lines at a time (tasks/ingest/stage.py), BY NAME. Its columns are described in batch.sql.
CREATE OR REPLACE TABLE staging.batch (
    source_row BIGINT, line_reason VARCHAR, raw_line VARCHAR, is_filtered BOOLEAN,
    session_id VARCHAR, user_id VARCHAR, item_id VARCHAR, event_type VARCHAR, category VARCHAR,
    ts TIMESTAMP, event_date DATE, weight DOUBLE,
    null_session_id BOOLEAN, null_user_id BOOLEAN, null_item_id BOOLEAN, null_event_type BOOLEAN,
    null_category BOOLEAN, null_ts BOOLEAN, range_ts BOOLEAN,
    regex_session_id BOOLEAN, regex_user_id BOOLEAN, regex_item_id BOOLEAN, set_event_type BOOLEAN,
    rejected BOOLEAN, reason VARCHAR,
    raw_session_id VARCHAR, raw_user_id VARCHAR, raw_item_id VARCHAR, raw_event_type VARCHAR,
    raw_category VARCHAR, raw_ts VARCHAR
);
