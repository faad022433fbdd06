"""The benchmarks' CPU split: a process's CPU seconds land on its role, counted between two snapshots."""

import os
import signal
import subprocess
import sys
import time

import pytest

from bench import cpu

BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\ntime.sleep(60)\n"


@pytest.fixture
def spawn():
    started = []

    def run(code: str) -> subprocess.Popen:
        started.append(subprocess.Popen([sys.executable, "-c", code], start_new_session=True))
        return started[-1]

    yield run
    for p in started:
        os.killpg(p.pid, signal.SIGKILL)


def _wait_for(condition, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    return condition()


def test_cpu_seconds_land_on_the_role_of_the_process_that_spent_them(spawn):
    before = cpu.snapshot()
    worker = spawn(BUSY)
    split = _wait_for(lambda: (s := cpu.by_role(before, cpu.snapshot(), worker.pid)).get("worker", 0) >= 0.25 and s)
    assert 0.25 <= split["worker"] < 1.0
    assert split.get("worker_helpers", 0) == split.get("broker", 0) == split.get("triton", 0) == 0
    # without the worker's pid, the same seconds are the benchmark's own
    assert cpu.by_role(before, cpu.snapshot())["bench"] >= 0.25


def test_a_helper_process_counts_for_the_worker_that_started_it(spawn):
    before = cpu.snapshot()
    worker = spawn(f"import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', {BUSY!r}])\ntime.sleep(60)\n")
    split = _wait_for(lambda: (s := cpu.by_role(before, cpu.snapshot(), worker.pid)).get("worker_helpers", 0) >= 0.25 and s)
    assert split["worker_helpers"] >= 0.25
    assert split.get("worker", 0) < 0.25  # the worker itself only started it


def test_per_document_is_the_median_over_runs_in_milliseconds():
    runs = [{"worker": 1.0, "broker": 0.3}, {"worker": 2.0}, {"worker": 1.5, "broker": 0.6}]
    assert cpu.per_document(runs, 1000) == pytest.approx({"broker": 0.3, "worker": 1.5})
    assert cpu.per_document([], 10) == {}
