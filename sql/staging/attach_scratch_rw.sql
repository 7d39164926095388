-- A staged file's scratch database, read-write, under the fixed alias `scratch` (persist_scratch.sql).
ATTACH $path AS scratch;
