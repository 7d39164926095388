-- The canonical text form of one staged file: one row per data row, every field as text exactly
-- as read (NULL when the source has no such field). Filled by stage_text_<format>.sql.
CREATE OR REPLACE TEMP TABLE stage_text (
    source_row      BIGINT NOT NULL,   -- line number in the file (Parquet: row number)
    session_id      VARCHAR,
    user_id         VARCHAR,
    item_id         VARCHAR,
    event_type      VARCHAR,
    category        VARCHAR,
    ts              VARCHAR,
    ts_offset       VARCHAR,           -- the profile's timestamp offset column, when it has one
    bad_line_reason VARCHAR,           -- set when the line itself is unusable ('blank line' is counted apart, not quarantined)
    raw_line        VARCHAR
);
