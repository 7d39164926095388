-- Events per item over the training window, most popular first (the long-tail curve).
SELECT count(*) AS n_events
FROM raw.clicks
WHERE event_date BETWEEN $start AND $end
GROUP BY item_id
ORDER BY n_events DESC, any_value(item_id);
