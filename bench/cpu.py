"""CPU seconds spent by the processes of a benchmark, by role (Linux ``/proc``): where a shared machine's
cores go when the pipeline runs beside its model server.

Roles: ``triton`` (tritonserver and its backend stubs), ``broker`` (tansu), ``worker`` (the worker
process), ``worker_helpers`` (its child processes: ingest helpers, local model processes) and ``bench``
(this process: the feed and the benchmark's own client).
"""

from __future__ import annotations

import os
from collections import defaultdict

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
Snapshot = dict[int, tuple[int, str, float]]  # pid -> (parent pid, command line, CPU seconds so far)


def snapshot() -> Snapshot:
    """Every process below this one, with its parent, command line and user + system CPU seconds."""
    table: Snapshot = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        table[int(entry)] = (int(fields[1]), command, (int(fields[11]) + int(fields[12])) / TICKS)
    below: Snapshot = {}
    frontier = [os.getpid()]
    children = defaultdict(list)
    for pid, (parent, _, _) in table.items():
        children[parent].append(pid)
    while frontier:
        pid = frontier.pop()
        if pid in table:
            below[pid] = table[pid]
        frontier += children.get(pid, [])
    return below


def role(pid: int, table: Snapshot, worker_pid: int | None) -> str:
    """The role of one process of ``table`` (see the module docstring)."""
    if pid == worker_pid:
        return "worker"
    chain, seen = pid, set()
    while chain in table and chain not in seen:
        seen.add(chain)
        parent, command, _ = table[chain]
        if "tritonserver" in command or "triton_python_backend_stub" in command:
            return "triton"
        if "tansu" in command:
            return "broker"
        if chain == worker_pid:
            return "worker_helpers"
        chain = parent
    return "bench"


def by_role(before: Snapshot, after: Snapshot, worker_pid: int | None = None) -> dict[str, float]:
    """CPU seconds per role between two snapshots (a process started meanwhile counts from zero)."""
    out: dict[str, float] = defaultdict(float)
    for pid, (_, command, cpu) in after.items():
        earlier = before.get(pid)
        spent = cpu - (earlier[2] if earlier and earlier[1] == command else 0.0)
        out[role(pid, after, worker_pid)] += max(spent, 0.0)
    return dict(out)


def per_document(runs: list[dict[str, float]], n: int) -> dict[str, float]:
    """Median CPU milliseconds per document and role over runs of ``n`` documents each."""
    from statistics import median

    roles = sorted({r for run in runs for r in run})
    return {r: median(run.get(r, 0.0) for run in runs) * 1000 / max(n, 1) for r in roles} if runs else {}
