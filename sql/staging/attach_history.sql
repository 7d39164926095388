-- The warehouse holding raw.clicks when validating a separate scratch database; read-only, fixed alias.
ATTACH $path AS history (READ_ONLY);
