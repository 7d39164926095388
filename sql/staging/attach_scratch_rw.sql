-- A staged file's scratch database, read-write, under the fixed alias `scratch` (keep_*.sql).
ATTACH $path AS scratch;
