"""Child processes the project starts itself (the broker, Triton, helper and model processes): free ports,
readiness, clean stops, none outliving its owner."""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Collection
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)[0]


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct ports free now (all held open until each is chosen: one at a time, the kernel can
    hand out the same port twice, and a server given it for two listeners refuses to start)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_for_port(host: str, port: int, timeout_s: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before opening {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.03)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout_s} s")


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` now (children, theirs, ...), from /proc (Linux); [] once it is gone."""
    out, todo = [], [pid]
    while todo:
        try:
            tasks = list(Path(f"/proc/{todo.pop()}/task").iterdir())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        for task in tasks:
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
            out += [c for c in children if c not in out]
            todo += children
    return out


def collect_rarely() -> None:
    """For a long-running worker, once set up: what exists now is never scanned again (``gc.freeze``), and
    young collections run every 20,000 allocations instead of 700. A micro-batch's objects then mostly die
    before a collection sees them instead of being promoted and pulling full collections over the worker's
    whole heap (the duplicate window alone is ~10^5 objects): with the defaults the collector took ~10% of
    the ingest stage. Cyclic garbage is still collected, a little later."""
    import gc

    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux), so no broker outlives its owner."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _child_setup(cpus: tuple[int, ...]) -> None:
    """In the child before exec: tied to its parent's life and, when ``cpus`` is given, to those cores (set
    before exec, so every thread and process the child starts inherits it)."""
    die_with_parent()
    if cpus:
        os.sched_setaffinity(0, cpus)


def child_pool(workers: int, initializer: Callable[..., None], initargs: tuple = ()) -> ProcessPoolExecutor:
    """``workers`` spawned Python processes that run ``initializer(*initargs)`` first and get SIGTERM when
    the thread that started them ends (:func:`die_with_parent`): submit the first call from the thread
    that owns the pool (the pool starts its processes then)."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_child_init,
                               initargs=(initializer, *initargs))


def _child_init(initializer: Callable[..., None], *initargs) -> None:
    die_with_parent()
    initializer(*initargs)


class ChildProcess:
    """A long-running child process with its output in ``log`` (or discarded); a context manager whose
    exit stops it (SIGTERM, then SIGKILL after ``stop_timeout_s``). It dies with its parent."""

    stop_timeout_s = 5.0

    def __init__(self, log: Path | None = None):
        self.log = log
        self.process: subprocess.Popen | None = None

    def spawn(self, command: list[str], env: dict[str, str], cpus: Collection[int] = ()) -> None:
        """Start ``command``; with ``cpus``, it and everything it starts run on those CPU cores only."""
        if self.log:
            Path(self.log).parent.mkdir(parents=True, exist_ok=True)  # a fresh machine has no var/bench yet
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                        preexec_fn=functools.partial(_child_setup, tuple(cpus)))

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 30) -> str:
        """The end of the log (what to show when the process failed)."""
        try:
            return "\n".join(Path(self.log).read_text(errors="replace").splitlines()[-lines:]) if self.log else ""
        except OSError:
            return ""

    def start(self) -> "ChildProcess":
        raise NotImplementedError

    def kill(self) -> None:
        """SIGKILL: no shutdown at all (what a crash looks like), and of whatever it started: those would be
        orphans (tritonserver's python-backend stubs lived on, ~500 MB each, after their server was killed)."""
        if self.process is not None and self.alive():
            below = descendants(self.process.pid)
            self.process.kill()
            self.process.wait()
            for pid in below:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
