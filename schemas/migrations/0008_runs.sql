-- Replay runs (`sentimon replay`): what produced a run's scores and alerts. A run's store holds its
-- own row; the source, the data's event-time range, the speed (0: as fast as possible), the models
-- seen in its scores, the rules' hash and the effective settings (secrets left out).
CREATE TABLE IF NOT EXISTS {db}.runs
(
    run_id       String,
    source       String,
    speed        Float64,
    items        UInt64,
    untimed      UInt64,
    data_from    Nullable(DateTime64(3, 'UTC')),
    data_to      Nullable(DateTime64(3, 'UTC')),
    models       Array(String),
    rules_hash   String,
    settings     String,
    started_at   DateTime64(3, 'UTC'),
    finished_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(finished_at)
ORDER BY run_id
