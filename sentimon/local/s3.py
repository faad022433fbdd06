"""A local S3 API (moto's server, in memory) for a durable tansu: the bucket outlives broker restarts.

moto lives in its own venv (``make s3-server``: its botocore and our dateutil disagree). Used by the
durable-broker fault test and ``python -m bench broker``; production points tansu at a real bucket.
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

from sentimon.settings import PROJECT_ROOT
from streams.process import ChildProcess, free_port, wait_for_port

SERVER = PROJECT_ROOT / ".venv-s3" / "bin" / "moto_server"


class S3Server:
    """moto's S3 server on a free loopback port with one bucket; ``env`` is what tansu needs to reach it."""

    def __init__(self, log: Path, bucket: str = "tansu"):
        self.bucket, self.port = bucket, free_port()
        self.child = ChildProcess(log)

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT": f"http://127.0.0.1:{self.port}", "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}

    def __enter__(self) -> "S3Server":
        if not SERVER.is_file():
            raise FileNotFoundError(f"no local S3 server at {SERVER}: run `make s3-server` (make test does)")
        self.child.spawn([str(SERVER), "-H", "127.0.0.1", "-p", str(self.port)], env=dict(os.environ))
        wait_for_port("127.0.0.1", self.port, 30, self.child.process)
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{self.port}/{self.bucket}", method="PUT"), timeout=10)
        return self

    def __exit__(self, *exc) -> None:
        self.child.stop()
