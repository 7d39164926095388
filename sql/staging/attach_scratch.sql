-- A file's scratch database, read-only, under the fixed alias `scratch`.
ATTACH $path AS scratch (READ_ONLY);
