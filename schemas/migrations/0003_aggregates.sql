-- Per-minute aggregates, filled by materialized views on every insert into scores.
-- docs counts every document; stories and the sentiment sums count a duplicated story once.
-- Entities: each ticker, each sector, and 'market'/'all' for everything.
CREATE TABLE IF NOT EXISTS {db}.entity_minute
(
    minute       DateTime('UTC'),
    entity_kind  LowCardinality(String),
    entity       LowCardinality(String),
    docs         UInt64,
    stories      UInt64,
    score_sum    Float64,
    score_sq_sum Float64,
    negative     UInt64,
    neutral      UInt64,
    positive     UInt64
)
ENGINE = SummingMergeTree
ORDER BY (entity_kind, entity, minute);

-- One row per (score, entity), computed once for both per-entity aggregates below; Null engine: the
-- rows only feed the views and are not kept.
CREATE TABLE IF NOT EXISTS {db}.entity_scores
(
    event_time   DateTime64(3, 'UTC'),
    entity_kind  LowCardinality(String),
    entity       LowCardinality(String),
    topic        LowCardinality(String),
    is_duplicate UInt8,
    score        Float32,
    sentiment    Enum8('negative' = -1, 'neutral' = 0, 'positive' = 1)
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.entity_scores_mv TO {db}.entity_scores AS
SELECT event_time, e.1 AS entity_kind, e.2 AS entity, toString(topic) AS topic, is_duplicate, score, sentiment
FROM {db}.scores
ARRAY JOIN arrayConcat(
    arrayMap(t -> tuple('ticker', toString(t)), tickers),
    arrayMap(s -> tuple('sector', toString(s)), sectors),
    [tuple('market', 'all')]
) AS e;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.entity_minute_mv TO {db}.entity_minute AS
SELECT
    toStartOfMinute(event_time) AS minute,
    entity_kind,
    entity,
    count() AS docs,
    countIf(is_duplicate = 0) AS stories,
    sumIf(toFloat64(score), is_duplicate = 0) AS score_sum,
    sumIf(toFloat64(score) * score, is_duplicate = 0) AS score_sq_sum,
    countIf(is_duplicate = 0 AND sentiment = 'negative') AS negative,
    countIf(is_duplicate = 0 AND sentiment = 'neutral') AS neutral,
    countIf(is_duplicate = 0 AND sentiment = 'positive') AS positive
FROM {db}.entity_scores
GROUP BY minute, entity_kind, entity;

CREATE TABLE IF NOT EXISTS {db}.topic_minute
(
    minute    DateTime('UTC'),
    topic     LowCardinality(String),
    docs      UInt64,
    stories   UInt64,
    score_sum Float64,
    negative  UInt64,
    neutral   UInt64,
    positive  UInt64
)
ENGINE = SummingMergeTree
ORDER BY (topic, minute);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.topic_minute_mv TO {db}.topic_minute AS
SELECT
    toStartOfMinute(event_time) AS minute,
    toString(topic) AS topic,
    count() AS docs,
    countIf(is_duplicate = 0) AS stories,
    sumIf(toFloat64(score), is_duplicate = 0) AS score_sum,
    countIf(is_duplicate = 0 AND sentiment = 'negative') AS negative,
    countIf(is_duplicate = 0 AND sentiment = 'neutral') AS neutral,
    countIf(is_duplicate = 0 AND sentiment = 'positive') AS positive
FROM {db}.scores
GROUP BY minute, topic;

-- Topic mix per entity (topic bursts for a ticker or sector).
CREATE TABLE IF NOT EXISTS {db}.entity_topic_minute
(
    minute      DateTime('UTC'),
    entity_kind LowCardinality(String),
    entity      LowCardinality(String),
    topic       LowCardinality(String),
    docs        UInt64,
    stories     UInt64
)
ENGINE = SummingMergeTree
ORDER BY (entity_kind, entity, topic, minute);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.entity_topic_minute_mv TO {db}.entity_topic_minute AS
SELECT
    toStartOfMinute(event_time) AS minute,
    entity_kind,
    entity,
    topic,
    count() AS docs,
    countIf(is_duplicate = 0) AS stories
FROM {db}.entity_scores
GROUP BY minute, entity_kind, entity, topic
