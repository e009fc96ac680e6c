"""Fixtures for the integration tests: the real local stack (started when not running) and workers,
built from :mod:`app.testing`."""
from __future__ import annotations

import pytest

from app.testing.kafka import delete_topics
from app.testing.names import Names
from app.testing.stack import local_stack
from app.testing.worker import Worker


@pytest.fixture(scope="session")
def stack():
    """Kafka and the registry on 127.0.0.1; stopped at the end only if this session started them."""
    with local_stack():
        yield


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
