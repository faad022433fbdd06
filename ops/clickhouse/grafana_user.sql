-- A read-only ClickHouse user for Grafana (server-side DDL: chDB cannot run CREATE USER).
-- Run once as an admin, with the password put in (it is not kept in the repository):
--   sed "s/REPLACE_WITH_PASSWORD/$SENTIMON_GRAFANA_CLICKHOUSE_PASSWORD/" ops/clickhouse/grafana_user.sql \
--     | clickhouse-client --multiquery
-- readonly = 1 refuses writes and settings changes; the plugin's client sets max_execution_time, so
-- that one setting is allowed to change within bounds (the plugin's documented requirement).
CREATE SETTINGS PROFILE IF NOT EXISTS sentimon_grafana_profile
    SETTINGS readonly = 1,
             max_execution_time = 60 CHANGEABLE_IN_READONLY MIN 1 MAX 300,
             max_result_rows = 1000000,
             max_memory_usage = 4000000000;

CREATE USER IF NOT EXISTS sentimon_grafana
    IDENTIFIED WITH sha256_password BY 'REPLACE_WITH_PASSWORD'
    SETTINGS PROFILE 'sentimon_grafana_profile';

GRANT SELECT ON sentimon.* TO sentimon_grafana;
