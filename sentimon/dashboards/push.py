"""``sentimon dashboards push``: the ClickHouse data source, the folder and the dashboards into a Grafana,
through grafana-client, idempotently: uids are stable, an unchanged object is left alone (no new
version), a changed dashboard is saved over the version it replaces (Grafana bumps the version, and
refuses if someone saved in between: pass ``force`` to overwrite)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sentimon.dashboards.query import DATASOURCE_UID, PLUGIN

FOLDER_UID = "sentimon"
VOLATILE = ("id", "version")  # what Grafana sets on a saved dashboard


@dataclass(frozen=True)
class Change:
    kind: str  # folder, datasource, dashboard
    uid: str
    action: str  # created, updated, unchanged


def datasource_model(settings) -> dict[str, Any]:
    """The ClickHouse data source as Grafana's API takes it (the same as ops/grafana/provisioning)."""
    g = settings.grafana
    return {
        "uid": DATASOURCE_UID, "name": "Sentimon ClickHouse", "type": PLUGIN, "access": "proxy", "isDefault": False,
        "jsonData": {"host": g.clickhouse_host, "port": g.clickhouse_port, "protocol": g.clickhouse_protocol,
                     "secure": g.clickhouse_secure, "username": g.clickhouse_user,
                     "defaultDatabase": settings.store.database},
        "secureJsonData": {"password": g.clickhouse_password.get_secret_value()},
    }


def _missing(exc: Exception) -> bool:
    return getattr(exc, "status_code", None) == 404


def push(api, settings, dashboards: dict[str, dict[str, Any]], force: bool = False) -> list[Change]:
    """Publish through ``api`` (a ``grafana_client.GrafanaApi``); what changed, in order."""
    from grafana_client.client import GrafanaClientError

    changes = []
    try:
        api.folder.get_folder(FOLDER_UID)
        changes.append(Change("folder", FOLDER_UID, "unchanged"))
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
        api.folder.create_folder(settings.grafana.folder, uid=FOLDER_UID)
        changes.append(Change("folder", FOLDER_UID, "created"))

    wanted = datasource_model(settings)
    try:
        current = api.datasource.get_datasource_by_uid(DATASOURCE_UID)
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
        api.datasource.create_datasource(wanted)
        changes.append(Change("datasource", DATASOURCE_UID, "created"))
    else:
        # Grafana never returns the password: send it again only with another change, or when forced
        same = all(current.get(k) == v for k, v in wanted.items() if k != "secureJsonData")
        if same and not force:
            changes.append(Change("datasource", DATASOURCE_UID, "unchanged"))
        else:
            api.datasource.update_datasource_by_uid(DATASOURCE_UID, wanted)
            changes.append(Change("datasource", DATASOURCE_UID, "updated"))

    for model in dashboards.values():
        uid = model["uid"]
        body = {k: v for k, v in model.items() if k not in VOLATILE}
        try:
            saved = api.dashboard.get_dashboard(uid)
        except GrafanaClientError as exc:
            if not _missing(exc):
                raise
            saved = None
        if saved is not None:
            old = {k: v for k, v in saved["dashboard"].items() if k not in VOLATILE}
            if old == body and saved.get("meta", {}).get("folderUid") == FOLDER_UID:
                changes.append(Change("dashboard", uid, "unchanged"))
                continue
            body["version"] = saved["dashboard"].get("version")
        api.dashboard.update_dashboard({"dashboard": {**body, "id": None}, "folderUid": FOLDER_UID,
                                        "overwrite": force, "message": "sentimon dashboards push"})
        changes.append(Change("dashboard", uid, "created" if saved is None else "updated"))
    return changes
