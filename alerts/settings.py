"""Alerting's settings section (the rules themselves live in the rules file, :mod:`alerts.config`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class AlertsSettings(BaseModel):
    """Anomaly rules and notifications (the rules file holds rules, routes, receivers, inhibition)."""

    enabled: bool = Field(True, description="evaluate rules and deliver notifications")
    run_in: Literal["store", "service"] = Field(
        "store", description="'store': the store worker evaluates and notifies (the embedded default); 'service': "
        "the store worker records its watermark and `sentimon alerts run` evaluates and notifies (a server store)")
    rules_file: str = Field("", description="alerts YAML; empty: the rules shipped in alerts/rules/default.yaml")
    lateness_s: float = Field(30.0, ge=0, description="allowed lateness of event time: a window is evaluated once "
                              "every partition has seen events this long after its end")
    idle_partition_s: float = Field(60.0, gt=0, description="a raw partition without data for this long (wall "
                                    "time), or a stage not heard for this long, stops holding the watermark back")
    evaluator: str = Field("default", description="name of the evaluator's progress record (one per deployment)")
    provenance_key: SecretStr = Field(SecretStr(""), description="HMAC key that marks the alert changes the evaluator "
                                      "publishes (only those reach a desk); empty: one generated under var_dir/secrets")
