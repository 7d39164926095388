-- The benchmark's floor, step 1 of 3: the same CSV files read into a scratch table, as the one pass
-- must persist every line for validation (no typing, no checks).
CREATE TABLE floor_stage AS SELECT * FROM read_csv($files, header = false, all_varchar = true);
