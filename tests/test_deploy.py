"""The deployment files (ops/docker-compose.yml, ops/k8s, ops/grafana) cannot run here (no Docker
engine, no cluster, no Grafana); this checks them against the code instead: every SENTIMON_* variable
is a real setting with a valid value, ports and commands are the ones the code serves and has, replica
counts are ones the design allows, and Grafana's provisioning points at the dashboards' data source."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sentimon.cli import app
from sentimon.dashboards.query import DATASOURCE_UID, PLUGIN
from sentimon.settings import Settings
from sentimon.web.access import check_exposure

OPS = Path(__file__).resolve().parents[1] / "ops"
COMPOSE = yaml.safe_load((OPS / "docker-compose.yml").read_text())
# the shipped rules file reads these itself (${VAR} in values, `env: VAR` for secrets)
_RULES = (Path(__file__).resolve().parents[1] / "alerts/rules/default.yaml").read_text()
RULE_VARIABLES = {a or b for a, b in re.findall(r"\$\{(\w+)|env: (\w+)", _RULES)}


def k8s(overlay: str = "base") -> list[dict]:
    """The resources a kustomization lists (base, or an overlay with its base), parsed."""
    root = OPS / "k8s" / ("base" if overlay == "base" else f"overlays/{overlay}")
    kustomization = yaml.safe_load((root / "kustomization.yaml").read_text())
    docs = []
    for resource in kustomization.get("resources", []):
        path = root / resource
        docs += k8s("base") if path.is_dir() else [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def configmap(overlay: str = "base") -> dict[str, str]:
    """sentimon-config as kustomize would generate it (an overlay's literals merged over the base's)."""
    out: dict[str, str] = {}
    roots = [OPS / "k8s/base"] + ([OPS / f"k8s/overlays/{overlay}"] if overlay != "base" else [])
    for root in roots:
        for gen in yaml.safe_load((root / "kustomization.yaml").read_text()).get("configMapGenerator", []):
            if gen["name"] == "sentimon-config":
                out.update(dict(lit.split("=", 1) for lit in gen["literals"]))
    return out


def settings_from(env: dict[str, str]) -> Settings:
    """Settings built from SENTIMON_* variables, failing on a variable that names no setting."""
    nested: dict = {}
    for name, value in env.items():
        if not name.startswith("SENTIMON_") or name in RULE_VARIABLES or name.startswith("SENTIMON_CLICKHOUSE"):
            continue
        path = name.removeprefix("SENTIMON_").lower().split("__")
        model, target = Settings, nested
        for i, part in enumerate(path):
            assert part in model.model_fields, f"{name}: no setting {'.'.join(path[:i + 1])}"
            if i == len(path) - 1:
                target[part] = value
            else:
                model = model.model_fields[part].annotation
                target = target.setdefault(part, {})
    return Settings(**nested)


def _env(value: str) -> str:
    # compose's ${VAR} / ${VAR:-default}: a placeholder value of the right shape
    return re.sub(r"\$\{(\w+)(:-[^}]*)?\}", "x", value)


def test_compose_settings_are_real_and_valid():
    env = {k: _env(str(v)) for k, v in COMPOSE["x-sentimon"]["environment"].items()}
    s = settings_from(env)
    assert s.scoring.backend == "triton" and s.alerts.run_in == "service" and s.store_dsn.startswith("http://")
    assert s.kafka.bootstrap_servers == "kafka:9092"
    assert {"SENTIMON_DESK_WEBHOOK_URL", "SENTIMON_DESK_WEBHOOK_SECRET"} <= set(env) & RULE_VARIABLES
    check_exposure(s.worker.host, s.worker.token.get_secret_value())  # listening beyond loopback, with a token


@pytest.mark.parametrize("overlay", ["base", "production"])
def test_kubernetes_settings_are_real_and_valid(overlay):
    s = settings_from(configmap(overlay))
    assert s.alerts.run_in == "service" and s.scoring.backend == "triton"
    # the secret the deployments read must carry the token when the workers listen beyond loopback
    secret = (OPS / "k8s" / "base" / "kustomization.yaml").read_text().split("apiVersion")[0]
    token = "x" if "SENTIMON_WORKER__TOKEN" in secret else ""
    check_exposure(s.worker.host, token)
    if overlay == "production":
        assert s.kafka.security_protocol == "SASL_SSL"


def _commands() -> list[tuple[str, list[str], int | None]]:
    """(where, sentimon arguments, the --web-port given) of every Sentimon container."""
    out = []
    for name, svc in COMPOSE["services"].items():
        if svc.get("image") == "sentimon:latest":
            out.append((f"compose {name}", svc["command"], None))
    for d in k8s():
        for c in d.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            if c["image"] == "sentimon":
                out.append((f"k8s {d['metadata']['name']}", c["args"], None))
    return [(w, args, int(args[args.index("--web-port") + 1]) if "--web-port" in args else None) for w, args, _ in out]


def test_every_command_exists_and_ports_are_the_settings_defaults():
    defaults = Settings().worker
    ports = {("worker", "pipeline"): defaults.pipeline_port, ("worker", "store"): defaults.store_port,
             ("alerts", "run"): defaults.alerts_port}
    seen = set()
    for where, args, port in _commands():
        words = [a for a in args if not a.startswith("--")][:2] if "--web-port" not in args else args[:args.index("--web-port")]
        result = CliRunner().invoke(app, [*words, "--help"])
        assert result.exit_code == 0, f"{where}: `sentimon {' '.join(words)}` is not a command"
        if tuple(words) in ports:
            assert port == ports[tuple(words)], f"{where}: port {port}, the code serves {ports[tuple(words)]}"
        seen.add(tuple(words))
    assert {("worker", "pipeline"), ("worker", "store"), ("alerts", "run"), ("db", "migrate")} <= seen
    # the Services and probes use the ports the containers expose
    for d in k8s():
        if d["kind"] == "Deployment" and d["metadata"]["name"].startswith("sentimon-"):
            (c,) = d["spec"]["template"]["spec"]["containers"]
            assert c["ports"][0]["containerPort"] == int(c["args"][c["args"].index("--web-port") + 1])
            assert c["readinessProbe"]["httpGet"]["path"] == "/health"


def test_triton_ports_match_the_settings():
    t = Settings().triton
    compose = COMPOSE["services"]["triton"]["command"]
    assert f"--grpc-port={t.grpc_port}" in compose and f"--http-port={t.http_port}" in compose
    assert f"--metrics-port={t.metrics_port}" in compose
    service = next(d for d in k8s() if d["kind"] == "Service" and d["metadata"]["name"] == "triton")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"http": t.http_port, "grpc": t.grpc_port,
                                                                         "metrics": t.metrics_port}
    assert configmap()["SENTIMON_TRITON__HOST"] == "triton"
    deployment = next(d for d in k8s() if d["kind"] == "Deployment" and d["metadata"]["name"] == "triton")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1


@pytest.mark.parametrize("overlay", ["base", "production"])
def test_replica_counts_are_ones_the_design_allows(overlay):
    docs = {d["metadata"]["name"]: d for d in k8s() if d["kind"] == "Deployment"}
    replicas = {name: d["spec"]["replicas"] for name, d in docs.items()}
    if overlay != "base":
        kustomization = yaml.safe_load((OPS / f"k8s/overlays/{overlay}/kustomization.yaml").read_text())
        replicas.update({r["name"]: r["count"] for r in kustomization.get("replicas", [])})
    partitions = Settings(kafka={"partitions": int(configmap(overlay)["SENTIMON_KAFKA__PARTITIONS"])}).kafka.partitions
    # consumer groups: more replicas than partitions would sit idle
    assert replicas["sentimon-pipeline"] <= partitions and replicas["sentimon-store"] <= partitions
    # one alert evaluator, never two during a rollout
    assert replicas["sentimon-alerts"] == 1 and docs["sentimon-alerts"]["spec"]["strategy"]["type"] == "Recreate"


def test_grafana_provisioning_matches_the_dashboards():
    datasource = yaml.safe_load((OPS / "grafana/provisioning/datasources/clickhouse.yaml").read_text())["datasources"][0]
    assert datasource["uid"] == DATASOURCE_UID and datasource["type"] == PLUGIN
    assert datasource["jsonData"]["defaultDatabase"] == Settings().store.database
    assert datasource["jsonData"]["username"] == Settings().grafana.clickhouse_user
    provider = yaml.safe_load((OPS / "grafana/provisioning/dashboards/sentimon.yaml").read_text())["providers"][0]
    mounts = dict(v.rsplit(":", 1)[0].split(":") for v in COMPOSE["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert (OPS / "grafana/dashboards").is_dir() and list((OPS / "grafana/dashboards").glob("*.json"))
    assert "grafana-clickhouse-datasource" in COMPOSE["services"]["grafana"]["environment"]["GF_INSTALL_PLUGINS"]
    sql = (OPS / "clickhouse/grafana_user.sql").read_text()
    assert f"GRANT SELECT ON {Settings().store.database}.* TO {Settings().grafana.clickhouse_user}" in sql
    assert "readonly = 1" in sql
