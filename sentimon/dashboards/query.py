"""A panel query for the official ClickHouse data source (grafana-clickhouse-datasource v4), as a
grafana-foundation-sdk data query: the SDK ships no ClickHouse variant, so this is it, registered with
the SDK's runtime so dashboards read back from JSON keep their queries typed."""

from __future__ import annotations

from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

PLUGIN = "grafana-clickhouse-datasource"
DATASOURCE_UID = "sentimon-clickhouse"
DATASOURCE = DataSourceRef(type_val=PLUGIN, uid=DATASOURCE_UID)
# the plugin's result formats (its Format enum)
FORMATS = {"time_series": 0, "table": 1}


class ClickHouseQuery(cogvariants.Dataquery):
    def __init__(self, raw_sql: str = "", ref_id: str = "A", format_: int = 1, hide: bool | None = None) -> None:
        self.raw_sql, self.ref_id, self.format, self.hide = raw_sql, ref_id, format_, hide

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"datasource": DATASOURCE.to_json(), "editorType": "sql", "format": self.format,
                                  "queryType": "table" if self.format == 1 else "timeseries", "rawSql": self.raw_sql,
                                  "refId": self.ref_id}
        if self.hide is not None:
            out["hide"] = self.hide
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(data.get("rawSql", ""), data.get("refId", "A"), int(data.get("format", 1)), data.get("hide"))


class Query(cogbuilder.Builder[cogvariants.Dataquery]):
    """``Query(sql, "time_series")``: SQL with Grafana variables and the plugin's macros."""

    def __init__(self, sql: str, fmt: Literal["time_series", "table"] = "table", ref_id: str = "A") -> None:
        self._internal = ClickHouseQuery(" ".join(sql.split()), ref_id, FORMATS[fmt])

    def build(self) -> ClickHouseQuery:
        return self._internal


cogruntime.register_dataquery_variant(cogruntime.DataqueryConfig(identifier=PLUGIN, from_json_hook=ClickHouseQuery.from_json))
