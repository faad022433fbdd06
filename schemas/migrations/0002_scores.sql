-- One score per document. The sink inserts only doc_ids not stored yet, so the aggregate views below
-- never see a document twice; ReplacingMergeTree is the second line of defence for this table.
CREATE TABLE IF NOT EXISTS {db}.scores
(
    doc_id           String,
    event_time       DateTime64(3, 'UTC'),
    scored_at        DateTime64(3, 'UTC'),
    stored_at        DateTime64(3, 'UTC') DEFAULT now64(3),
    kind             LowCardinality(String),
    source           LowCardinality(String),
    tickers          Array(LowCardinality(String)),
    sectors          Array(LowCardinality(String)),
    is_duplicate     UInt8,
    model            LowCardinality(String),
    model_version    LowCardinality(String),
    sentiment        Enum8('negative' = -1, 'neutral' = 0, 'positive' = 1),
    p_negative       Float32,
    p_neutral        Float32,
    p_positive       Float32,
    score            Float32,
    topic            LowCardinality(String),
    topic_confidence Float32,
    INDEX event_time_minmax event_time TYPE minmax GRANULARITY 4
)
ENGINE = ReplacingMergeTree(stored_at)
PARTITION BY toYYYYMM(event_time)
ORDER BY doc_id
