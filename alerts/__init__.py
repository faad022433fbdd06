"""Anomaly rules and alert lifecycle (issue 5)."""
