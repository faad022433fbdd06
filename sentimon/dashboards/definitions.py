"""Sentimon's Grafana dashboards, as code (grafana-foundation-sdk builders). ``make dashboards`` writes
them to ``ops/grafana/dashboards/*.json``; a test checks the committed JSON is what this code builds.

Every query reads our ClickHouse tables through the ``$db`` constant (the database name), filters on
the dashboard's time range with the plugin's macros, and on the variables entity, sector, topic and
source where they apply. Time is event time (when the story was published), except on the pipeline
dashboard, which also shows when documents were stored.
"""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.builders import barchart, stat, statetimeline, statushistory, table, timeseries
from grafana_foundation_sdk.builders.common import StackingConfig
from grafana_foundation_sdk.builders.dashboard import (
    AnnotationQuery, ConstantVariable, Dashboard, DashboardLink, QueryVariable, Row, ThresholdsConfig,
)
from grafana_foundation_sdk.builders.dashboard import FieldColor as FieldColorBuilder
from grafana_foundation_sdk.models.common import GraphDrawStyle, StackingMode, VisibilityMode, VizOrientation
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync, DashboardLinkType, FieldColorModeId, Threshold, ThresholdsMode, VariableOption,
    VariableRefresh, VariableSort,
)

from sentimon.dashboards.query import DATASOURCE, Query

TAGS = ["sentimon"]
SENTIMENT_COLORS = FieldColorBuilder().mode(FieldColorModeId.CONTINUOUS_RD_YL_GR)

# --- variables ------------------------------------------------------------------------------------


def _db(default: str = "sentimon"):
    return (ConstantVariable("db").value(default)
            .description("the ClickHouse database Sentimon writes (store.database)"))


def _pick(name: str, label: str, sql: str, multi: bool = True, sort: VariableSort = VariableSort.ALPHABETICAL_ASC):
    v = (QueryVariable(name).label(label).datasource(DATASOURCE).query(" ".join(sql.split()))
         .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(sort))
    if multi:
        v = v.multi(True).include_all(True).current(VariableOption(selected=True, text=["All"], value=["$__all"]))
    return v


def entity_variable(multi: bool = True):
    # tickers ordered by volume in the range: the busiest first
    return _pick("entity", "ticker", """
        SELECT entity FROM $db.entity_minute WHERE entity_kind = 'ticker' AND $__timeFilter(minute)
        GROUP BY entity ORDER BY sum(stories) DESC LIMIT 200""", multi, VariableSort.DISABLED)


def sector_variable():
    return _pick("sector", "sector", """
        SELECT DISTINCT entity FROM $db.entity_minute WHERE entity_kind = 'sector' AND $__timeFilter(minute)""")


def topic_variable(time: str = "event_time"):
    """``time``: the column the dashboard's range applies to (event_time, or stored_at on the pipeline's)."""
    return _pick("topic", "topic", f"SELECT DISTINCT toString(topic) FROM $db.scores WHERE $__timeFilter({time})")


def source_variable(time: str = "event_time"):
    return _pick("source", "source", f"SELECT DISTINCT toString(source) FROM $db.scores WHERE $__timeFilter({time})")


def _base(uid: str, title: str, description: str) -> Dashboard:
    return (Dashboard(title).uid(uid).description(description).tags(TAGS).refresh("30s").time("now-6h", "now")
            .timezone("utc").tooltip(DashboardCursorSync.CROSSHAIR).editable()
            .link(DashboardLink("Sentimon").type(DashboardLinkType.DASHBOARDS).tags(TAGS).as_dropdown(True)
                  .include_vars(True).keep_time(True)))


def _score_axis(panel):
    return panel.min(-1).max(1).decimals(2).color_scheme(SENTIMENT_COLORS)


def _thresholds(*steps: tuple[float | None, str]):
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps([Threshold(value=v, color=c) for v, c in steps])


# --- market overview ------------------------------------------------------------------------------

MEAN = "sum(score_sum) / nullIf(sum(stories), 0)"


def overview() -> Dashboard:
    d = _base("sentimon-overview", "Sentimon / Market overview",
              "The market's tone by sector and ticker, volume, and the biggest movers (event time).")
    for v in (_db(), sector_variable(), entity_variable(), source_variable()):
        d = d.with_variable(v)
    d = (d.with_panel(stat.Panel().title("Stories").span(6).height(4).with_target(Query(
            "SELECT sum(stories) AS stories FROM $db.entity_minute WHERE entity_kind = 'market' AND $__timeFilter(minute)")))
         .with_panel(stat.Panel().title("Mean sentiment").span(6).height(4).decimals(2).min(-1).max(1)
                     .thresholds(_thresholds((None, "red"), (-0.1, "yellow"), (0.1, "green"))).with_target(Query(
            f"SELECT {MEAN} AS mean_score FROM $db.entity_minute WHERE entity_kind = 'market' AND $__timeFilter(minute)")))
         .with_panel(stat.Panel().title("Negative share").span(6).height(4).unit("percentunit").with_target(Query(
            "SELECT sum(negative) / nullIf(sum(stories), 0) AS negative_share FROM $db.entity_minute "
            "WHERE entity_kind = 'market' AND $__timeFilter(minute)")))
         .with_panel(stat.Panel().title("Alerts firing").span(6).height(4)
                     .thresholds(_thresholds((None, "green"), (1, "red"))).with_target(Query(
            "SELECT count() AS firing FROM (SELECT fingerprint, argMax(status, at) AS status FROM $db.alerts FINAL "
            "WHERE at <= $__toTime_ms GROUP BY fingerprint) WHERE status = 'firing'")))
         .with_row(Row("Sentiment by sector and ticker"))
         .with_panel(_score_axis(statushistory.Panel().title("Sentiment by sector (mean score per interval)").span(24)
                                 .height(9).show_value(VisibilityMode.NEVER)).with_target(Query(f"""
            SELECT $__timeInterval(minute) AS time, entity, {MEAN} AS mean_score FROM $db.entity_minute
            WHERE entity_kind = 'sector' AND entity IN (${{sector:singlequote}}) AND $__timeFilter(minute)
            GROUP BY time, entity ORDER BY time""", "time_series")))
         .with_panel(_score_axis(statushistory.Panel().title("Sentiment of the busiest tickers").span(24).height(10)
                                 .show_value(VisibilityMode.NEVER)).with_target(Query(f"""
            SELECT $__timeInterval(minute) AS time, entity, {MEAN} AS mean_score FROM $db.entity_minute
            WHERE entity_kind = 'ticker' AND entity IN (${{entity:singlequote}}) AND $__timeFilter(minute)
              AND entity IN (SELECT entity FROM $db.entity_minute WHERE entity_kind = 'ticker'
                             AND entity IN (${{entity:singlequote}}) AND $__timeFilter(minute)
                             GROUP BY entity ORDER BY sum(stories) DESC LIMIT 15)
            GROUP BY time, entity ORDER BY time""", "time_series")))
         .with_row(Row("Volume and movers"))
         .with_panel(timeseries.Panel().title("Stories per interval, by kind").span(12).height(8).unit("short")
                     .draw_style(GraphDrawStyle.BARS).fill_opacity(60).with_target(Query("""
            SELECT $__timeInterval(event_time) AS time, kind, countIf(is_duplicate = 0) AS stories FROM $db.scores
            WHERE $__timeFilter(event_time) AND source IN (${source:singlequote}) GROUP BY time, kind ORDER BY time""",
                                                                            "time_series")))
         .with_panel(table.Panel().title("Top movers: last 15 minutes of the range against the hour before").span(12)
                     .height(8).with_target(Query("""
            SELECT entity, recent AS stories, recent_sum / recent AS mean_score, before_sum / before AS baseline_score,
                   mean_score - baseline_score AS change
            FROM (SELECT entity,
                         sumIf(stories, minute >= $__toTime - INTERVAL 15 MINUTE) AS recent,
                         sumIf(score_sum, minute >= $__toTime - INTERVAL 15 MINUTE) AS recent_sum,
                         sumIf(stories, minute < $__toTime - INTERVAL 15 MINUTE) AS before,
                         sumIf(score_sum, minute < $__toTime - INTERVAL 15 MINUTE) AS before_sum
                  FROM $db.entity_minute
                  WHERE entity_kind = 'ticker' AND entity IN (${entity:singlequote})
                    AND minute >= $__toTime - INTERVAL 75 MINUTE AND minute <= $__toTime
                  GROUP BY entity)
            WHERE recent >= 5 AND before > 0
            ORDER BY abs(change) DESC LIMIT 20"""))))
    return d


# --- entity drill-down ----------------------------------------------------------------------------


def entity() -> Dashboard:
    d = _base("sentimon-entity", "Sentimon / Entity drill-down",
              "One ticker: its sentiment over time with its alerts, volume, topic mix and latest headlines.")
    for v in (_db(), entity_variable(multi=False)):
        d = d.with_variable(v)
    d = d.annotation(AnnotationQuery().name("Alerts").datasource(DATASOURCE).enable(True).icon_color("red"))
    d = (d.with_panel(_score_axis(timeseries.Panel().title("Mean sentiment of $entity (stories, per interval)")
                                  .span(16).height(9).line_width(2).fill_opacity(10).span_nulls(True))
                      .with_target(Query(f"""
            SELECT $__timeInterval(minute) AS time, {MEAN} AS mean_score FROM $db.entity_minute
            WHERE entity_kind = 'ticker' AND entity = ${{entity:sqlstring}} AND $__timeFilter(minute)
            GROUP BY time ORDER BY time""", "time_series")))
         .with_panel(barchart.Panel().title("Topic mix of $entity").span(8).height(9).orientation(VizOrientation.HORIZONTAL)
                     .show_value(VisibilityMode.NEVER).x_field("topic").with_target(Query("""
            SELECT topic, sum(stories) AS stories FROM $db.entity_topic_minute
            WHERE entity_kind = 'ticker' AND entity = ${entity:sqlstring} AND $__timeFilter(minute)
            GROUP BY topic ORDER BY stories DESC LIMIT 12""")))
         .with_panel(timeseries.Panel().title("Stories about $entity, by sentiment").span(16).height(7)
                     .draw_style(GraphDrawStyle.BARS).fill_opacity(70).stacking(StackingConfig().mode(StackingMode.NORMAL)).with_target(Query("""
            SELECT $__timeInterval(minute) AS time, sum(negative) AS negative, sum(neutral) AS neutral,
                   sum(positive) AS positive
            FROM $db.entity_minute WHERE entity_kind = 'ticker' AND entity = ${entity:sqlstring} AND $__timeFilter(minute)
            GROUP BY time ORDER BY time""", "time_series")))
         .with_panel(table.Panel().title("Alerts about $entity").span(8).height(7).with_target(Query("""
            SELECT at, status, alertname, severity, annotations['summary'] AS summary FROM $db.alerts FINAL
            WHERE entity = ${entity:sqlstring} AND status IN ('firing', 'resolved') AND $__timeFilter(at)
            ORDER BY at DESC LIMIT 50""")))
         .with_panel(table.Panel().title("Latest headlines about $entity").span(24).height(10).with_target(Query("""
            SELECT s.event_time AS time, s.sentiment, round(s.score, 2) AS score, s.topic,
                   if(d.title != '', d.title, substring(d.text, 1, 200)) AS headline, s.source
            FROM $db.scores AS s INNER JOIN $db.documents AS d ON d.doc_id = s.doc_id
            WHERE has(s.tickers, ${entity:sqlstring}) AND s.is_duplicate = 0 AND $__timeFilter(s.event_time)
            ORDER BY s.event_time DESC LIMIT 100"""))))
    return d


ENTITY_ANNOTATIONS = """
    SELECT if(status = 'resolved', starts_at, at) AS time, if(status = 'resolved', ends_at, NULL) AS timeEnd,
           concat(alertname, ' ', status, ': ', annotations['summary']) AS text, [severity, status] AS tags
    FROM $db.alerts FINAL WHERE entity = ${entity:sqlstring} AND status IN ('firing', 'resolved') AND $__timeFilter(at)"""


# --- alerts ---------------------------------------------------------------------------------------


def alerts() -> Dashboard:
    d = _base("sentimon-alerts", "Sentimon / Alerts",
              "Every alert state change: what fired and resolved, when, how severe, for which desk.")
    d = d.with_variable(_db())
    d = (d.with_panel(statetimeline.Panel().title("Alert states over time").span(24).height(10).show_value(VisibilityMode.NEVER)
                      .with_target(Query("""
            SELECT at AS time, concat(alertname, ' ', entity) AS alert, status FROM $db.alerts FINAL
            WHERE $__timeFilter(at) AND status != 'inactive' ORDER BY time""", "time_series")))
         .with_panel(barchart.Panel().title("Alerts fired, by severity").span(12).height(8).x_field("severity")
                     .with_target(Query("""
            SELECT severity, count() AS fired FROM $db.alerts FINAL WHERE status = 'firing' AND $__timeFilter(at)
            GROUP BY severity ORDER BY fired DESC""")))
         .with_panel(barchart.Panel().title("Alerts fired, by desk").span(12).height(8).x_field("desk")
                     .with_target(Query("""
            SELECT if(labels['desk'] = '', '(none)', labels['desk']) AS desk, count() AS fired FROM $db.alerts FINAL
            WHERE status = 'firing' AND $__timeFilter(at) GROUP BY desk ORDER BY fired DESC""")))
         .with_panel(table.Panel().title("Alert changes").span(24).height(12).with_target(Query("""
            SELECT at, status, alertname, severity, entity_kind, entity, labels['desk'] AS desk,
                   annotations['summary'] AS summary, fingerprint
            FROM $db.alerts FINAL WHERE $__timeFilter(at) ORDER BY at DESC LIMIT 500"""))))
    return d


# --- pipeline and model health --------------------------------------------------------------------


def pipeline() -> Dashboard:
    d = _base("sentimon-pipeline", "Sentimon / Pipeline and model health",
              "Throughput, lateness and latency of the stored documents, dead letters, and the models' confidence. "
              "Time here is when documents were stored.")
    for v in (_db(), topic_variable("stored_at"), source_variable("stored_at")):
        d = d.with_variable(v)
    d = (d.with_panel(timeseries.Panel().title("Documents stored per second").span(12).height(8).unit("ops")
                      .with_target(Query("""
            SELECT $__timeInterval(stored_at) AS time, kind, count() / $__interval_s AS docs_per_s FROM $db.scores
            WHERE $__timeFilter(stored_at) AND source IN (${source:singlequote}) GROUP BY time, kind ORDER BY time""",
                                          "time_series")))
         .with_panel(timeseries.Panel().title("Ingest to stored latency and event-time lag (p50, p99)").span(12)
                     .height(8).unit("s").with_target(Query("""
            SELECT $__timeInterval(d.stored_at) AS time,
                   quantile(0.5)(dateDiff('millisecond', d.ingested_at, d.stored_at) / 1000) AS pipeline_p50,
                   quantile(0.99)(dateDiff('millisecond', d.ingested_at, d.stored_at) / 1000) AS pipeline_p99,
                   quantile(0.5)(dateDiff('millisecond', d.event_time, d.stored_at) / 1000) AS event_lag_p50
            FROM $db.documents AS d WHERE $__timeFilter(d.stored_at) AND d.source IN (${source:singlequote})
            GROUP BY time ORDER BY time""", "time_series")))
         .with_panel(timeseries.Panel().title("Dead letters per interval, by stage").span(12).height(8)
                     .draw_style(GraphDrawStyle.BARS).with_target(Query("""
            SELECT $__timeInterval(failed_at) AS time, stage, count() AS dead_letters FROM $db.dead_letters
            WHERE $__timeFilter(failed_at) GROUP BY time, stage ORDER BY time""", "time_series")))
         .with_panel(table.Panel().title("Latest dead letters").span(12).height(8).with_target(Query("""
            SELECT failed_at, stage, reason, topic, partition, offset FROM $db.dead_letters FINAL
            WHERE $__timeFilter(failed_at) ORDER BY failed_at DESC LIMIT 100""")))
         .with_panel(barchart.Panel().title("Sentiment confidence (highest class probability)").span(12).height(8)
                     .x_field("confidence").with_target(Query("""
            SELECT toString(round(floor(greatest(p_negative, p_neutral, p_positive) * 10) / 10, 1)) AS confidence,
                   count() AS documents
            FROM $db.scores WHERE $__timeFilter(stored_at) GROUP BY confidence ORDER BY confidence""")))
         .with_panel(timeseries.Panel().title("Mean topic confidence, by topic").span(12).height(8).min(0).max(1)
                     .with_target(Query("""
            SELECT $__timeInterval(stored_at) AS time, topic, avg(topic_confidence) AS confidence FROM $db.scores
            WHERE $__timeFilter(stored_at) AND topic IN (${topic:singlequote}) GROUP BY time, topic ORDER BY time""",
                                       "time_series")))
         .with_panel(table.Panel().title("Models in use").span(24).height(5).with_target(Query("""
            SELECT model, model_version, count() AS documents, min(stored_at) AS first, max(stored_at) AS last
            FROM $db.scores WHERE $__timeFilter(stored_at) GROUP BY model, model_version ORDER BY last DESC"""))))
    return d


DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "overview": overview, "entity": entity, "alerts": alerts, "pipeline": pipeline,
}
ANNOTATIONS = {"sentimon-entity": {"Alerts": ENTITY_ANNOTATIONS}}
