"""Ordered, idempotent ClickHouse migrations: ``schemas/migrations/NNNN_name.sql``.

Each file holds ``;``-separated statements with ``{db}`` standing for the database name. Applied
versions are recorded in ``<db>.schema_migrations``; every statement is also ``IF NOT EXISTS``, so a
migration interrupted halfway can simply run again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def check_identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"invalid database name {name!r}: use letters, digits and '_'")
    return name


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All migrations in version order; ValueError on a badly named or duplicated file."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        m = re.match(r"^(\d{4})_([a-z0-9_]+)\.sql$", path.name)
        if not m:
            raise ValueError(f"migration file {path.name} must be named NNNN_name.sql")
        version = int(m.group(1))
        if version in found:
            raise ValueError(f"two migrations with version {version}")
        text = "\n".join(line for line in path.read_text().splitlines() if not line.strip().startswith("--"))
        statements = tuple(s.strip() for s in text.split(";") if s.strip())
        found[version] = Migration(version, m.group(2), statements)
    return [found[v] for v in sorted(found)]


def migrate(client, database: str) -> list[Migration]:
    """Apply the migrations not yet recorded in ``database``; returns those applied now."""
    db = check_identifier(database)
    client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = MergeTree ORDER BY version"
    )
    done = {int(row[0]) for row in client.query(f"SELECT version FROM {db}.schema_migrations").result_rows}
    applied = []
    for migration in migrations():
        if migration.version in done:
            continue
        for statement in migration.statements:
            client.command(statement.replace("{db}", db))
        client.insert(f"{db}.schema_migrations", [[migration.version, migration.name]], column_names=["version", "name"])
        applied.append(migration)
    return applied
