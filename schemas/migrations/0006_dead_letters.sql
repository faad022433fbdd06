-- The dead letters, as the store worker reads them from the dead-letter topic (for dashboards and
-- audit; the topic stays the source of truth). Keyed by the letter's own position in that topic,
-- so a redelivery replaces instead of adding. The original bytes stay in the topic (base64 here
-- would double the store for hostile input); `sentimon dead-letters` shows them.
CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    letter_partition  UInt32,
    letter_offset     UInt64,
    stage             LowCardinality(String),
    reason            String,
    topic             LowCardinality(String),
    partition         Int32,
    offset            Int64,
    item_index        Nullable(Int32),
    original_bytes    UInt32,
    failed_at         DateTime64(3, 'UTC'),
    stored_at         DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(stored_at)
PARTITION BY toYYYYMM(failed_at)
ORDER BY (letter_partition, letter_offset)
