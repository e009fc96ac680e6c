"""A worker (``faust -A app worker`` in a subprocess: :class:`app.process.WorkerProcess`) on one
test's topics against the local stack, and the checks tests make on it."""
from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Iterator

from app.process import WorkerProcess
from app.testing.kafka import committed_and_end
from app.testing.names import Names
from app.testing.stack import BROKER, REGISTRY


class Worker(WorkerProcess):
    """A worker on one test's topics (its ``Names``), against the local stack; ``extra_env`` adds or
    overrides settings (another broker or registry among them)."""

    def __init__(self, names: Names, workdir: Path, extra_env: dict[str, str] | None = None, name: str = "worker"):
        env = {**names.env(), "FRAUD_KAFKA_BROKER": BROKER, "FRAUD_SCHEMA_REGISTRY_URL": REGISTRY, **(extra_env or {})}
        super().__init__(workdir, env, name=name)
        self.names = names


@contextlib.contextmanager
def stopped(*pids: int) -> Iterator[None]:
    """The processes ``pids`` stopped (SIGSTOP) for the block and continued (SIGCONT) after it,
    whatever happens in it: what is written meanwhile waits for them as a backlog.

    >>> import subprocess, sys
    >>> child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    >>> with stopped(child.pid):
    ...     open(f"/proc/{child.pid}/stat").read().rsplit(")", 1)[1].split()[0]
    'T'
    >>> open(f"/proc/{child.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "T"
    True
    >>> child.kill(); child.wait()
    -9
    """
    held: list[int] = []
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
            held.append(pid)
        yield
    finally:
        for pid in held:
            os.kill(pid, signal.SIGCONT)


def wait_for(worker: WorkerProcess, condition, timeout_s: float, what: str, interval_s: float = 0.5) -> None:
    """Poll ``condition`` until it holds; after ``timeout_s`` fail the test with ``what`` and the
    tail of the worker's log (what the worker was doing is the first thing to read)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{worker.log_tail()}"
        time.sleep(interval_s)


def wait_committed(worker: Worker, topic: str, timeout_s: float = 60.0) -> None:
    """Until the worker's group has committed every partition of ``topic`` up to its end (asked of
    the broker, not of the worker's lag metric, which is refreshed only every few seconds), so that a
    restart redelivers nothing: at-least-once redelivery would count an event twice (in windows, in a
    detector), which is not what a restart test is about."""
    deadline = time.monotonic() + timeout_s
    while True:
        committed, ends = committed_and_end(worker.names.app_id, topic)
        if ends and all(committed.get(p, 0) >= end for p, end in ends.items()):
            return
        assert time.monotonic() < deadline, f"{topic}: committed {committed}, end {ends}\n{worker.log_tail()}"
        time.sleep(0.5)


def assert_healthy(worker: WorkerProcess) -> None:
    """The worker process runs and none of its agents crashed (Faust restarts a crashed agent, losing
    the events it held)."""
    assert worker.alive(), f"{worker.name} died:\n{worker.log_tail()}"
    crashes = [line for line in worker.log_text().splitlines() if "Crashed reason=" in line]
    assert not crashes, f"{worker.name}: an agent crashed:\n" + "\n".join(crashes[:5])
