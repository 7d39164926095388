-- A staged file's scratch database (attached read-write as `scratch`) keeps what the run's
-- validation and commit read of the file (keep_*.sql); the wide batch itself stays in memory.
CREATE SCHEMA scratch.staging;
