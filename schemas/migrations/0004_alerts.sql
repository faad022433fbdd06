-- Every alert state change (pending, firing, resolved, inactive), for Grafana annotations and audit.
-- A re-evaluation after a restart writes the same (fingerprint, at, status) again: one row remains.
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    fingerprint  String,
    status       LowCardinality(String),
    alertname    LowCardinality(String),
    severity     LowCardinality(String),
    entity_kind  LowCardinality(String),
    entity       LowCardinality(String),
    labels       Map(String, String),
    annotations  Map(String, String),
    starts_at    DateTime64(3, 'UTC'),
    ends_at      Nullable(DateTime64(3, 'UTC')),
    at           DateTime64(3, 'UTC'),
    value        Nullable(Float64),
    written_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(written_at)
PARTITION BY toYYYYMM(at)
ORDER BY (fingerprint, at, status);

-- Silences (sentimon alerts silence): the newest row of an id wins.
CREATE TABLE IF NOT EXISTS {db}.silences
(
    id          String,
    matchers    String,
    starts_at   DateTime64(3, 'UTC'),
    ends_at     DateTime64(3, 'UTC'),
    created_by  String,
    comment     String,
    updated_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY id;

-- The evaluator's progress: the last window end evaluated and the open alerts (JSON), per evaluator.
CREATE TABLE IF NOT EXISTS {db}.alert_state
(
    evaluator        String,
    evaluated_until  DateTime64(3, 'UTC'),
    rules_hash       String,
    states           String,
    updated_at       DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY evaluator
