-- One expectation result (executemany over all results of the batch).
INSERT INTO ops.validation_results
    (run_id, batch, expectation, column_name, level, success, observed_value,
     unexpected_count, element_count, details, validated_at)
VALUES ($run_id, $batch, $expectation, $column_name, $level, $success, $observed_value,
        $unexpected_count, $element_count, $details, $validated_at::TIMESTAMP);
