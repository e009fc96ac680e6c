"""One run against the local stack, as a benchmark makes it: the stack up (started, and stopped at
the end, only if it was not running), fresh topics, a scratch folder, workers on those topics; at
the end the workers are stopped and the topics deleted, whatever happened in between.

    with fresh_run("bench") as run:
        worker = run.start_worker({"FRAUD_AGENTS": "scoring"})   # ready, its partitions assigned
        replay(run.names, rows, labels="in-event")
        ...

The topics are made when first used (a worker, a replay); :meth:`Run.create_topics` makes them
before (with the settings' partitions), for rows written before any worker starts.
"""
from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
import threading
from pathlib import Path
from typing import Iterator

from app.testing.kafka import delete_topics
from app.testing.names import Names
from app.testing.stack import BROKER, local_stack
from app.testing.worker import Worker


class Run:
    """The fresh topic names (``names``) and scratch ``folder`` of one run, and the workers started
    on them (:meth:`start_worker`), which :meth:`close` stops before deleting the topics."""

    def __init__(self, names: Names, folder: Path) -> None:
        self.names = names
        self.folder = Path(folder)
        self.workers: list[Worker] = []

    def create_topics(self) -> None:
        """Make the run's topics now, with the settings' partitions and replicas."""
        import settings
        from app.admin import ensure_topics

        asyncio.run(ensure_topics(BROKER, self.names.topics(), settings.TOPIC_PARTITIONS, settings.TOPIC_REPLICAS))

    def start_worker(self, extra_env: dict[str, str] | None = None, name: str = "worker",
                     wait_assigned: bool = True, timeout_s: float = 60.0) -> Worker:
        """A worker on the run's topics (``extra_env`` adds settings), in ``folder / name``, started
        (ready within ``timeout_s``) and, with ``wait_assigned``, with partitions assigned."""
        worker = Worker(self.names, self.folder / name, extra_env, name=name)
        self.workers.append(worker)
        worker.start(timeout_s)
        if wait_assigned:
            worker.wait_assigned()
        return worker

    def close(self) -> None:
        """Stop the run's workers, then delete its topics (a running worker would make them again)."""
        for worker in self.workers:
            worker.stop()
        delete_topics(self.names)


@contextlib.contextmanager
def terminated_as_exit() -> Iterator[None]:
    """In the block, SIGTERM (``kill``, ``timeout``) raises ``SystemExit(143)`` in the main thread,
    as Ctrl-C raises ``KeyboardInterrupt``, so that the blocks around it clean up (Python's default
    for SIGTERM ends the process at once). Outside the main thread it changes nothing.

    >>> import os, signal
    >>> try:
    ...     with terminated_as_exit():
    ...         os.kill(os.getpid(), signal.SIGTERM)
    ... except SystemExit as stop:
    ...     stop.code
    143
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def fresh_run(tag: str, stack_env: dict[str, str] | None = None) -> Iterator[Run]:
    """A :class:`Run` on topics named after ``tag``, for the block, with the local stack up
    (``stack_env``: the environment of ``infra/stack.sh start`` if it starts it here); closed at the
    end of the block, then the stack stopped if it was started here, also when the process is
    stopped by SIGTERM meanwhile."""
    with terminated_as_exit(), local_stack(stack_env), tempfile.TemporaryDirectory(prefix=f"{tag}-") as folder:
        run = Run(Names(tag), Path(folder))
        try:
            yield run
        finally:
            run.close()
