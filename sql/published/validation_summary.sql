-- Great Expectations results per validated batch: how many expectations ran, which failed.
CREATE TABLE pub.ops.validation_summary AS
SELECT
    CAST(max(validated_at) AS DATE)                                       AS validated_on,
    run_id,
    batch,
    count(*)                                                              AS expectations,
    count(*) FILTER (WHERE NOT success)                                   AS failed,
    coalesce(sum(unexpected_count) FILTER (WHERE NOT success), 0)         AS unexpected_rows,
    string_agg(expectation, ', ' ORDER BY expectation) FILTER (WHERE NOT success) AS failed_expectations
FROM ops.validation_results
GROUP BY run_id, batch
ORDER BY validated_on, run_id, batch;
