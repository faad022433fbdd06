#!/bin/sh
# ClickHouse's docker entrypoint runs this once on an empty data directory: the read-only Grafana user,
# with its password from the environment (never written to the repository).
set -eu
sed "s/REPLACE_WITH_PASSWORD/${SENTIMON_GRAFANA_CLICKHOUSE_PASSWORD}/" /sentimon/grafana_user.sql \
  | clickhouse client --user "${CLICKHOUSE_USER}" --password "${CLICKHOUSE_PASSWORD}" --multiquery
