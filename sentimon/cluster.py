"""A local deployment started by the project itself: the tansu broker and worker processes.

Used by ``sentimon demo``, the integration tests and the pipeline benchmark, so all three run the
same real parts the same way. Each worker is a ``sentimon worker ROLE`` subprocess with its own web
port (health, metrics, API) and log file; settings reach it through ``SENTIMON_*`` variables.
"""

from __future__ import annotations

import json
from datetime import datetime
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from sentimon.settings import Settings
from sentimon.web import access
from sentimon.local.broker import Broker
from streams.process import ChildProcess, free_port
from streams.store import Store
from sentimon.local.triton import TritonServer


def settings_env(settings: Settings) -> dict[str, str]:
    """``SENTIMON_*`` variables that reproduce ``settings`` in a child process (secrets included)."""

    def plain(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, BaseModel):
            return {k: plain(getattr(value, k)) for k in type(value).model_fields}
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, datetime):
            return value.isoformat()
        return value

    env = {}
    for name in Settings.model_fields:
        value = plain(getattr(settings, name))
        env[f"SENTIMON_{name.upper()}"] = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return env


class WorkerProcess(ChildProcess):
    """A ``sentimon worker ROLE`` subprocess and its web endpoints."""

    stop_timeout_s = 30.0

    def __init__(self, role: str, name: str, port: int, log: Path, host: str, token: str = ""):
        super().__init__(log)
        self.role, self.name, self.port, self.host = role, name, port, host
        self._headers = access.headers(token)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def get(self, path: str, timeout_s: float = 5.0) -> dict:
        return self._call(urllib.request.Request(self.url + path, headers=self._headers), timeout_s)

    def post(self, path: str, body: dict | None = None, timeout_s: float = 30.0) -> dict:
        return self._call(urllib.request.Request(self.url + path, method="POST", data=json.dumps(body or {}).encode(),
                                                 headers={**self._headers, "Content-Type": "application/json"}), timeout_s)

    @staticmethod
    def _call(request: urllib.request.Request, timeout_s: float) -> dict:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.loads(response.read())

    def health(self) -> dict | None:
        """The worker's /health body (``ready`` false while it waits for a failing store, Kafka or scorer), or
        None while it does not answer."""
        try:
            return self.get("/health", timeout_s=2.0)
        except urllib.error.HTTPError as exc:  # 503: up, not ready; the body says why
            try:
                return json.loads(exc.read())
            except ValueError:
                return None
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def metrics(self) -> dict[str, float]:
        body = self.health()
        return body.get("metrics", {}) if body else {}

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                assert self.process is not None
                raise RuntimeError(f"worker {self.name} exited with {self.process.returncode}; see {self.log}:\n{self.tail()}")
            body = self.health()
            if body and body.get("ready"):
                return
            time.sleep(0.3)
        raise TimeoutError(f"worker {self.name} not ready after {timeout_s} s; see {self.log}:\n{self.tail()}")


class LocalCluster:
    """Broker, optionally a Triton server, and workers under ``workdir`` (logs there). A context manager."""

    def __init__(self, settings: Settings, workdir: Path, start_broker: bool = True):
        self.settings = settings
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.broker = Broker(log=self.workdir / "broker.log") if start_broker else None
        self.triton: TritonServer | None = None
        self.workers: list[WorkerProcess] = []

    def start_triton(self) -> TritonServer:
        """Export the settings' model to ``workdir/triton_repo``, serve it, and score through it from now on
        (workers started later use ``scoring.backend = triton``)."""
        from models import artifact
        from models.export import Serving, export_python

        ref = artifact.resolve(self.settings.model, self.settings.models_dir)
        t = self.settings.triton
        export_python(ref, self.workdir / "triton_repo", Serving.of(t, runtime=self.settings.scoring.runtime))
        self.triton = TritonServer(self.workdir / "triton_repo", self.workdir / "triton", t.host, cpus=t.cpus).start()
        self.settings = self.settings.model_copy(update={
            "triton": t.model_copy(update={"grpc_port": self.triton.grpc_port, "http_port": self.triton.http_port,
                                           "metrics_port": self.triton.metrics_port}),
            "scoring": self.settings.scoring.model_copy(update={"backend": "triton"}),
        })
        return self.triton

    def restart_triton(self) -> TritonServer:
        """A new Triton process on the same ports and repository (after a stop or a kill)."""
        assert self.triton is not None, "start_triton first"
        old = self.triton
        old.stop()
        self.triton = TritonServer(old.repository, old.work, old.host, old.grpc_port, old.http_port,
                                   old.metrics_port, cpus=old.cpus).start()
        return self.triton

    def start(self) -> "LocalCluster":
        if self.broker is not None:
            self.broker.start()
            self.settings = self.settings.model_copy(
                update={"kafka": self.settings.kafka.model_copy(update={"bootstrap_servers": self.broker.bootstrap})}
            )
        from streams.kafka.admin import ensure_topics

        ensure_topics(self.settings)
        return self

    def start_worker(self, role: str, name: str | None = None, wait: bool = True, **overrides: Any) -> WorkerProcess:
        """Start ``sentimon worker ROLE`` (``sentimon alerts run`` for ``alerts``); ``overrides`` replace top-level settings for this worker only."""
        name = name or f"{role}-{sum(w.role == role for w in self.workers) + 1}"
        port = free_port(self.settings.worker.host)
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        env = {**os.environ, **settings_env(settings), "PYTHONUNBUFFERED": "1"}
        env.pop("SENTIMON_CONFIG", None)  # everything is in the variables
        log = self.workdir / f"{name}.log"
        worker = WorkerProcess(role, name, port, log, settings.worker.host, settings.worker.token.get_secret_value())
        command = ["alerts", "run"] if role == "alerts" else ["worker", role]
        worker.spawn([sys.executable, "-m", "sentimon.cli", *command, "--web-port", str(port)], env)
        self.workers.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    @contextmanager
    def store(self) -> Iterator[Store]:
        """Stop the workers, then open the cluster's store in this process (chDB: one process at a time)."""
        for worker in self.workers:
            worker.stop()
        store = Store(self.settings.store_dsn, self.settings.store.database)
        try:
            yield store
        finally:
            store.close()

    def stop(self) -> None:
        for worker in reversed(self.workers):
            worker.stop()
        if self.triton is not None:
            self.triton.stop()
        if self.broker is not None:
            self.broker.stop()

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
