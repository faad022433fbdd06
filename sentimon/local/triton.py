"""The real ``tritonserver`` from the ``nvidia-pytriton`` wheel, on this machine's CPU (python backend).

What it needs (see ``docs/platform.md``): a backend directory holding the python
backend's library, its utilities and the stub for this Python; the wheel's libraries and this
Python's ``LIBDIR`` on ``LD_LIBRARY_PATH``; this venv's ``bin`` first on ``PATH`` (the stub finds our
packages through ``python3``). Production runs the official container against the same repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Collection
from pathlib import Path

from streams.process import ChildProcess, free_ports


class TritonUnavailable(RuntimeError):
    """The server could not be started, or stopped before it was ready; the message carries its log."""


def _pytriton_dir() -> Path:
    try:
        import pytriton
    except ImportError as exc:  # pragma: no cover - a broken install
        raise TritonUnavailable("nvidia-pytriton is not installed: run `make install`") from exc
    return Path(pytriton.__file__).parent / "tritonserver"


def backend_dir(work: Path) -> Path:
    """Assemble ``<work>/backends/python`` from the wheel (links; rebuilt when missing)."""
    root = _pytriton_dir()
    target = Path(work) / "backends" / "python"
    target.mkdir(parents=True, exist_ok=True)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    sources = {
        "libtriton_python.so": root / "backends" / "python" / "libtriton_python.so",
        "triton_python_backend_utils.py": root / "backends" / "python" / "triton_python_backend_utils.py",
        "triton_python_backend_stub": root / "python_backend_stubs" / version / "triton_python_backend_stub",
    }
    for name, source in sources.items():
        if not source.exists():
            raise TritonUnavailable(f"{source} is missing from nvidia-pytriton (Python {version} supported?)")
        link = target / name
        if link.is_symlink() or link.exists():
            if link.resolve() == source.resolve():
                continue
            link.unlink()
        link.symlink_to(source)
    return target.parent


class TritonServer(ChildProcess):
    """``tritonserver`` serving ``repository`` on ``host`` (ports 0: free ones). A context manager;
    :meth:`start` returns once every model is ready, or raises :class:`TritonUnavailable` with the log."""

    stop_timeout_s = 15.0

    def __init__(self, repository: Path, work: Path, host: str = "127.0.0.1", grpc_port: int = 0,
                 http_port: int = 0, metrics_port: int = 0, log: Path | None = None, cpus: Collection[int] = ()):
        work = Path(work)
        work.mkdir(parents=True, exist_ok=True)
        super().__init__(log or work / "tritonserver.log")
        self.repository, self.work, self.host = Path(repository), work, host
        self.cpus = tuple(sorted(set(cpus)))
        spare = iter(free_ports(3, host))
        self.grpc_port, self.http_port, self.metrics_port = (p or next(spare) for p in (grpc_port, http_port, metrics_port))

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"

    def command(self) -> list[str]:
        return [
            str(_pytriton_dir() / "bin" / "tritonserver"),
            f"--model-repository={self.repository.resolve()}",
            f"--backend-directory={backend_dir(self.work)}",
            f"--http-address={self.host}", f"--http-port={self.http_port}",
            f"--grpc-address={self.host}", f"--grpc-port={self.grpc_port}",
            f"--metrics-address={self.host}", f"--metrics-port={self.metrics_port}",
            "--allow-gpu-metrics=false", "--exit-on-error=true", "--pinned-memory-pool-byte-size=0",
            "--log-verbose=0",
        ]

    def environment(self) -> dict[str, str]:
        libs = _pytriton_dir().parents[1] / "nvidia_pytriton.libs"  # beside the pytriton package
        paths = [str(libs), sysconfig.get_config_var("LIBDIR") or ""]
        if os.environ.get("LD_LIBRARY_PATH"):
            paths.append(os.environ["LD_LIBRARY_PATH"])
        return {**os.environ, "LD_LIBRARY_PATH": ":".join(p for p in paths if p),
                "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http_url}/v2/health/ready", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self, timeout_s: float = 180.0) -> "TritonServer":
        if not self.repository.is_dir() or not any(self.repository.glob("*/config.pbtxt")):
            raise TritonUnavailable(f"no model repository at {self.repository}: run `sentimon export` first")
        cores = os.cpu_count() or 1
        if missing := sorted(c for c in self.cpus if c >= cores):
            raise TritonUnavailable(f"triton.cpus names cores {missing} this machine does not have (cores 0-{cores - 1}); "
                                    "fix SENTIMON_TRITON__CPUS or the config file")
        try:
            self.spawn(self.command(), self.environment(), self.cpus)
        except subprocess.SubprocessError as exc:  # a core outside this process's cpuset
            raise TritonUnavailable(f"tritonserver could not start on cores {list(self.cpus)}: {exc}") from exc
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise TritonUnavailable(f"tritonserver exited with {self.process.returncode if self.process else '?'} "
                                        f"before it was ready; its log ({self.log}):\n{self.tail(40)}")
            if self.ready():
                return self
            time.sleep(0.25)
        self.stop()
        raise TritonUnavailable(f"tritonserver not ready after {timeout_s} s; its log ({self.log}):\n{self.tail(40)}")
