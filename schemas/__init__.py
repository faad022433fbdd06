"""Versioned event models and ClickHouse migrations (issue 3)."""
