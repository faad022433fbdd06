"""The ``sentimon`` command line: one entry point, a subcommand per job, ``--help`` everywhere. One module per
command group: models, stream, store, replay, dashboards, alerts; what they share is in ``common``."""

from __future__ import annotations

# importing a group registers its commands; this order is the order `sentimon --help` lists them in
from sentimon.cli import stream, models, store, dashboards, replay, alerts  # noqa: F401, I001
from sentimon.cli.common import app


def main() -> None:
    app()


__all__ = ["app", "main"]
