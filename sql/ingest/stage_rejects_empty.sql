-- Parquet files have no line-level rejects; an empty table keeps the later steps uniform.
CREATE OR REPLACE TEMP TABLE stage_rejects (line BIGINT, error_type VARCHAR, error_message VARCHAR, csv_line VARCHAR);
