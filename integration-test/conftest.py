"""Fixtures for the integration tests: the real local stack (started when not running) and workers."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import STACK, Names, Worker, delete_topics, stack_running  # noqa: E402


@pytest.fixture(scope="session")
def stack():
    """Kafka and the registry on 127.0.0.1; stopped at the end only if this session started them."""
    started = False
    if not stack_running():
        subprocess.run([str(STACK), "start"], check=True)
        started = True
    yield
    if started:
        subprocess.run([str(STACK), "stop"], check=False)


@pytest.fixture
def names(request, stack) -> Names:
    """This test's own topic names; its topics are deleted when it ends (after its workers stop):
    a broker that keeps every test's partitions gets slower run after run."""
    names = Names(request.node.name.split("[")[0].replace("_", "")[:20])
    yield names
    delete_topics(names)


@pytest.fixture
def make_worker(stack, names, tmp_path):
    """Start workers for this test's topics; all are stopped at the end (before ``names`` deletes
    the topics)."""
    workers: list[Worker] = []

    def make(extra_env: dict[str, str] | None = None, name: str | None = None, start: bool = True) -> Worker:
        worker = Worker(names, tmp_path / (name or f"w{len(workers)}"), extra_env, name=name or f"w{len(workers)}")
        workers.append(worker)
        return worker.start() if start else worker

    yield make
    for worker in workers:
        worker.stop()
