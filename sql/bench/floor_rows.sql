-- The rows the benchmark's floor loaded into raw.clicks: the landing files' accepted lines, as the
-- pipeline's (it ran the same checked pass over the same files).
SELECT count(*) FROM raw.clicks;
