"""Helpers shared by the benchmarks (keep this small).

* :func:`local_stack` - a context manager: starts ``infra/stack.sh`` if Kafka and the registry are
  not running, and stops them on exit only if it started them.
* :func:`start_worker` - a ``faust -A app worker`` subprocess on unique topics (the integration
  harness's :class:`Worker` / :class:`Names`), stopped by the caller, who then deletes the topics
  (``delete_topics(worker.names)``).
* :func:`key_values` - the last line of a benchmark: ``a=1 b=0.25 ...``.
* :func:`load_average` - the 1-minute load average, to note how busy the shared machine was.
* :func:`wait_written` - wait until a topic holds so many messages, without reading them (a reader
  would take CPU from the service being measured).
* :func:`cpu_seconds` - a process's CPU time so far.
* :func:`broker_pid`, :func:`jit_cpu_seconds` - the local broker's process, and the CPU time its JIT
  compiler threads have taken (a freshly started broker compiles new code paths for a while).
"""
from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "integration-test"))
sys.path.insert(0, str(ROOT))

from harness import BROKER, STACK, Names, Worker, delete_topics, read, replay, stack_running  # noqa: E402,F401


@contextlib.contextmanager
def local_stack(env: dict[str, str] | None = None):
    """The local Kafka + registry; stopped at the end only if started here (with ``env`` as the
    environment of ``infra/stack.sh start``, if given: this process's otherwise)."""
    started = False
    if not stack_running():
        subprocess.run([str(STACK), "start"], check=True, env=env)
        started = True
    try:
        yield
    finally:
        if started:
            subprocess.run([str(STACK), "stop"], check=False)


def start_worker(tag: str, workdir: Path, extra_env: dict[str, str] | None = None) -> Worker:
    """A worker on fresh topics named after ``tag`` (``worker.names`` holds them)."""
    return Worker(Names(tag), workdir, extra_env).start()


def key_values(**figures) -> str:
    """One ``key=value`` line; floats get 4 significant decimals.

    >>> key_values(loop_eps=994.123, ratio=0.8567, runs=3, note="x")
    'loop_eps=994.1 ratio=0.8567 runs=3 note=x'
    """
    def fmt(v):
        if isinstance(v, float):
            if math.isnan(v):
                return "nan"
            return f"{v:.1f}" if abs(v) >= 100 else f"{v:.4g}"
        return str(v)

    return " ".join(f"{k}={fmt(v)}" for k, v in figures.items())


def broker_pid() -> int | None:
    """The pid of the local stack's broker (``infra/stack.sh``'s pid file), or None if it does not run."""
    stack_dir = Path(os.environ.get("STACK_DIR") or Path(__file__).resolve().parents[1] / ".stack")
    try:
        pid = int((stack_dir / "run" / "kafka.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _name_and_ticks(stat_path: str) -> tuple[str, int]:
    """A process's or thread's name and user + system CPU time in clock ticks, from its ``stat`` file
    (the name is in parentheses and may hold spaces, so the fields are counted after the last ')')."""
    stat = Path(stat_path).read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return stat[stat.index("(") + 1:stat.rindex(")")], int(fields[11]) + int(fields[12])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    return _name_and_ticks(f"/proc/{pid}/stat")[1] / os.sysconf("SC_CLK_TCK")


def jit_cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a JVM's JIT compiler threads (``C1 CompilerThread*``,
    ``C2 CompilerThread*``; Linux ``/proc``); 0 for a process that is gone."""
    total = 0
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in threads:
        try:
            name, ticks = _name_and_ticks(f"/proc/{pid}/task/{tid}/stat")
        except OSError:  # the thread ended meanwhile
            continue
        if name.startswith(("C1 CompilerThre", "C2 CompilerThre")):
            total += ticks
    return total / os.sysconf("SC_CLK_TCK")


def load_average() -> float:
    return os.getloadavg()[0]


def wait_written(topic: str, expect: int, timeout_s: float, idle_s: float,
                 stop_if: Callable[[], bool] | None = None) -> int:
    """Wait until ``topic`` holds ``expect`` messages (the sum of its partitions' end offsets, asked
    for twice a second); give up after ``timeout_s``, after ``idle_s`` without a new message, or as
    soon as ``stop_if()`` is true. Returns the count last seen."""
    import asyncio
    import time

    from aiokafka import AIOKafkaConsumer

    from app.admin import bootstrap_servers, topic_partitions

    async def go() -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(BROKER), enable_auto_commit=False, group_id=None)
        await consumer.start()
        try:
            started = time.monotonic()
            partitions = await topic_partitions(consumer, topic, timeout_s)
            if not partitions:
                return 0
            grew = time.monotonic()
            seen = -1
            while True:
                count = sum((await consumer.end_offsets(partitions)).values())
                now = time.monotonic()
                if count != seen:
                    seen, grew = count, now
                if (count >= expect or now - started > timeout_s or now - grew > idle_s
                        or (stop_if is not None and stop_if())):
                    return count
                await asyncio.sleep(0.5)
        finally:
            await consumer.stop()

    return asyncio.run(go())
