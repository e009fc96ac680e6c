"""CPU time from Linux ``/proc``: of a process, of a JVM's JIT compiler threads, and the load
average, for benchmarks that say what a run cost beside how long it took on a shared machine.

>>> import os
>>> cpu_seconds(os.getpid()) > 0
True
>>> jit_cpu_seconds(os.getpid())  # a Python process has no compiler threads
0.0
>>> wait_quiet(os.getpid(), timeout_s=5.0) < 5.0  # this process sleeps while it waits
True
"""
from __future__ import annotations

import os
import time
from pathlib import Path


def _name_and_ticks(stat_path: str) -> tuple[str, int]:
    """A process's or thread's name and user + system CPU time in clock ticks, from its ``stat`` file
    (the name is in parentheses and may hold spaces, so the fields are counted after the last ')')."""
    stat = Path(stat_path).read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return stat[stat.index("(") + 1:stat.rindex(")")], int(fields[11]) + int(fields[12])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    return _name_and_ticks(f"/proc/{pid}/stat")[1] / os.sysconf("SC_CLK_TCK")


def jit_cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a JVM's JIT compiler threads (``C1 CompilerThread*``,
    ``C2 CompilerThread*``); 0 for a process that is gone. A freshly started broker compiles new code
    paths for a while (:func:`app.testing.stack.broker_pid` finds the local one)."""
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
    """The 1-minute load average: how busy the shared machine was around a measurement."""
    return os.getloadavg()[0]


def wait_quiet(pid: int, cores: float = 0.05, span_s: float = 0.5, timeout_s: float = 30.0) -> float:
    """Wait until process ``pid`` used less than ``cores`` of a core over ``span_s``: a freshly
    started process (the model process importing River, about a second of CPU) is done starting,
    so a CPU-per-event figure taken from now on counts no start-up. Returns the seconds waited;
    after ``timeout_s`` it returns anyway (a process that stays busy), and at once for one that
    is gone."""
    started = time.monotonic()
    try:
        before = cpu_seconds(pid)
        while time.monotonic() - started < timeout_s:
            time.sleep(span_s)
            now = cpu_seconds(pid)
            if now - before < cores * span_s:
                break
            before = now
    except OSError:  # the process is gone
        pass
    return time.monotonic() - started
