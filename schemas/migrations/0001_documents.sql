-- Normalized documents, one row per doc_id (a redelivered document replaces itself).
CREATE TABLE IF NOT EXISTS {db}.documents
(
    doc_id       String,
    kind         LowCardinality(String),
    source       LowCardinality(String),
    source_id    String,
    event_time   DateTime64(3, 'UTC'),
    ingested_at  DateTime64(3, 'UTC'),
    stored_at    DateTime64(3, 'UTC') DEFAULT now64(3),
    title        String,
    text         String,
    url          String,
    language     LowCardinality(String),
    author_hash  String,
    tickers      Array(LowCardinality(String)),
    sectors      Array(LowCardinality(String)),
    engagement   UInt32,
    duplicate_of String,
    INDEX event_time_minmax event_time TYPE minmax GRANULARITY 4
)
ENGINE = ReplacingMergeTree(stored_at)
PARTITION BY toYYYYMM(event_time)
ORDER BY doc_id
