-- The sink's event-time watermark, recorded after the data it covers is stored, when the alert
-- evaluator runs as its own service (`sentimon alerts run`, alerts.run_in = "service"): the evaluator
-- reads it here instead of from the Kafka headers the sink sees.
CREATE TABLE IF NOT EXISTS {db}.watermarks
(
    name        String,
    watermark   DateTime64(3, 'UTC'),
    drained     UInt8,
    updated_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY name
