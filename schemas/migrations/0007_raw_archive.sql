-- The raw archive: every raw item as it arrived (bad ones too), so history can always be replayed
-- through the same pipeline (`sentimon replay --source archive`). Keyed by its position in the raw
-- topic (a redelivery replaces). event_time is read from the item (published_at / created_at) when
-- it has one. Retention (archive.ttl_days) counts from when an item was archived, not from its event
-- time: a TTL on event time would drop old history at insert.
CREATE TABLE IF NOT EXISTS {db}.raw_items
(
    kind         LowCardinality(String),
    topic        LowCardinality(String),
    partition    UInt32,
    offset       UInt64,
    item_index   UInt32,
    event_time   Nullable(DateTime64(3, 'UTC')),
    archived_at  DateTime64(3, 'UTC') DEFAULT now64(3),
    value        String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree(archived_at)
PARTITION BY toYYYYMM(archived_at)
ORDER BY (topic, partition, offset, item_index)
