-- Build step 6: one row in features.builds describing what this build did.
INSERT INTO features.builds
WITH counts AS (
    SELECT
        (SELECT count(*) FROM raw.clicks WHERE event_date BETWEEN $start_date AND $end_date) AS n_raw_events,
        (SELECT count(*) FROM features.session_events) AS n_events,
        (SELECT count(*) FROM features.sessions) AS n_sessions,
        (SELECT count(*) FROM features.item_vocab) AS n_items
)

SELECT
    now() AT TIME ZONE 'UTC' AS built_at,
    $start_date AS start_date,
    $end_date AS end_date,
    $entity AS entity,
    $config AS config,
    n_raw_events,
    n_events,
    n_sessions,
    n_items,
    $filter_rounds AS filter_rounds
FROM counts
