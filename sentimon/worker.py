"""Run a Faust app as a worker process (``sentimon worker pipeline|store``, ``sentimon alerts run``)."""

from __future__ import annotations

import logging

from sentimon.settings import Settings, check_privacy_key
from sentimon.apps import Role, alerts_app, pipeline_app, store_app
from streams.kafka.admin import ensure_topics
from streams.process import collect_rarely


def use_event_loop(name: str) -> None:
    """Make ``name`` ('uvloop' or 'asyncio') the event loop policy of this process."""
    import asyncio

    if name == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())


def run(role: Role, settings: Settings, web_port: int | None = None, loglevel: str = "info") -> None:
    """Create the topics if missing, then run until SIGTERM/SIGINT; resources are closed on the way out."""
    import faust

    from sentimon.web.access import check_exposure

    check_exposure(settings.worker.host, settings.worker.token.get_secret_value())  # before anything starts
    check_privacy_key(settings)
    ensure_topics(settings)
    use_event_loop(settings.worker.event_loop)  # before the app exists: Faust takes the policy's loop
    apps = {"pipeline": pipeline_app, "store": store_app, "alerts": alerts_app}
    app = apps[role](settings, web_port)
    from sentimon.logs import logging_config

    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False,
                          logging_config=logging_config(settings.worker.log_format, loglevel))
    collect_rarely()
    try:
        worker.execute_from_commandline()
    finally:
        for close in getattr(app, "sentimon_closers", []):
            try:
                close()
            except Exception as exc:  # closing must not hide why the worker stopped
                logging.getLogger("sentimon.worker").warning("close failed: %s", exc)
