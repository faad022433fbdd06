-- The notification log (as Alertmanager's nflog): what each aggregation group last told its receiver, so a
-- restarted worker neither repeats a firing nor mutes the resolved that follows it.
CREATE TABLE IF NOT EXISTS {db}.notification_log
(
    group_key   String,
    notified    Map(String, String),
    last_sent   Float64,
    repeats     UInt32,
    updated_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY group_key;

-- Each notification id delivered, per notifier: a notification read again after a crash is not sent twice.
CREATE TABLE IF NOT EXISTS {db}.notification_deliveries
(
    notifier      String,
    id            String,
    delivered_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(delivered_at)
ORDER BY (notifier, id)
TTL toDateTime(delivered_at) + INTERVAL 30 DAY
