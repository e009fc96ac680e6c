"""Where the worker's CPU goes per event: a sampling profile of a real worker scoring flat out.

    python -m benchmarks.profile_worker                          # 60,000 ULB rows, ARF with 3 trees
    python -m benchmarks.profile_worker --rows 100000 --kind arf+lr --trees 10 --raw /tmp/profile

The rows are written to fresh topics first (so that the producer does not share the machine's cores
with the worker while it is measured), then a worker (``faust -A app worker``, the scoring agent
only, or ``--agents``) starts and works through the backlog flat out. Once ``--skip-rows`` scores
are out (the start: the model process's imports, the first batches), `py-spy <https://github.com/benfred/py-spy>`_
samples the worker and its model process (``--rate`` samples per second, without stopping them)
until ``--profile-rows`` more scores are out. Each process's CPU time over the same span comes
from ``/proc``, user and system apart. Only samples of a thread holding the GIL count (``--gil``): a
thread in a system call (a socket or pipe write, a wait in ``epoll``) has released it, and on a
busy machine a thread that a wake-up of another process preempted inside a system call would
otherwise count as busy for as long as it waits for a core. A stage's share of those samples times
the process's user CPU per event is the stage's CPU per event; the system CPU per event (the kernel's
side of the sockets and the pipe to the model process) is a row of its own.

A sample belongs to the stage of the innermost frame on its stack that one of :data:`STAGES`
(:data:`MODEL_STAGES` in the model process) names (a frame of ``asyncio`` or of a generic helper is passed over for the frame that called it):
a pickle made in ``ProcessHost.submit`` counts as the model round trip, the Avro decoder called by
Faust's topic as the Avro decode. Samples with no named frame are ``other``; ``--raw DIR`` keeps
py-spy's collapsed stacks (``worker.txt``, ``model.txt``: one ``frame;frame;... count`` line per
distinct stack) for a closer look, and ``--top`` prints the innermost frames of each stage.

py-spy is in the ``profile`` extra (``pip install -e '.[profile]'``).
"""
from __future__ import annotations

from app.testing.single_partition import use_single_partition

use_single_partition()  # before settings: one partition, a model per partition (benchmarks/README.md)

import argparse
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.testing.cpu import load_average
from app.testing.figures import key_values
from app.testing.replay import replay
from app.testing.run import fresh_run
from app.testing.stack import BROKER

#: (stage, pattern): a frame (``function (path:line)``, as py-spy writes it) that matches the
#: pattern puts its sample in the stage; the first matching pattern of the innermost matching frame wins.
MODEL_STAGES: list[tuple[str, str]] = [
    ("the model (predict, learn)", r"\((?:.*/)?(?:river|app/learning/(?:learner|pipeline|blend|splitter|explain))[/.]"),
    ("applying operations", r"\((?:.*/)?app/learning/learner_set\.py"),
    ("unpickle, pickle, pipe", r"\((?:.*/)?app/learning/model_host\.py"),
]
STAGES: list[tuple[str, str]] = [
    ("sensors and metrics", r"\((?:.*/)?(?:faust/sensors|prometheus_client|app/metrics\.py|app/observability\.py)"),
    ("Avro decode", r"\((?:.*/)?(?:fastavro|app/serialization/avro\.py)|\bloads_value \(|\bdecode_batch \("),
    ("record object, model features", r"\((?:.*/)?(?:faust/models|dataclasses_avroschema|dataclasses\.py|app/records/)"),
    ("model round trip (pickle, pipe, results)", r"\((?:.*/)?app/learning/(?:model_host|hosted_learner)\.py"),
    ("table writes (pending features)", r"\((?:.*/)?(?:app/state/(?:changelog|pending)\.py|faust/tables)"),
    ("score encode and send", r"\((?:.*/)?(?:aiokafka/producer|aiokafka/record|faust/transport/drivers/aiokafka\.py:\d+\)$)"
                              r"|\bsend \(.*faust/(?:topics|transport/producer|transport/drivers)|\b_dumps \("
                              r"|\b(?:send|send_batch) \(.*app/outputs\.py|\bconfirmed \(.*app/outputs\.py"),
    ("acks and commits", r"\b(?:ack|_ack|on_message_out|commit|_commit|_commit_offsets|_handle_attached|"
                         r"maybe_commit|_send_attached) \(.*faust/"),
    ("anomaly agent (its detector included)", r"\((?:.*/)?app/(?:anomaly/|agents/anomaly\.py)"),
    ("drift agent (its monitors included)", r"\((?:.*/)?app/(?:drift/|agents/drift\.py)"),
    ("scorer (plan, score dicts, upkeep)", r"\((?:.*/)?app/(?:scoring|state|windows)/"),
    ("scoring agent (take, send loop, batches)", r"\((?:.*/)?app/agents/"),
    ("Faust stream (events, batches, buffers)", r"\((?:.*/)?faust/(?:streams|events|types|channels|topics|agents)"),
    ("consumer hand-off (fetch, conductor, Message)", r"\((?:.*/)?(?:aiokafka|faust/transport|kafka/)"),
    ("event loop", r"\((?:.*/)?(?:asyncio|uvloop|selectors\.py|mode/)"),
]
def _compiled(stages: list[tuple[str, str]]) -> list[tuple[str, re.Pattern]]:
    return [(stage, re.compile(pattern)) for stage, pattern in stages]


_COMPILED = {"worker": _compiled(STAGES), "model": _compiled(MODEL_STAGES)}
#: frames passed over for their caller: generic helpers that any stage calls
_GENERIC = re.compile(r"\((?:.*/)?(?:asyncio/(?:futures|tasks|locks|queues)|typing\.py|abc\.py|functools\.py|"
                      r"contextlib\.py|weakref\.py|enum\.py|copy\.py|collections/|threading\.py|logging/)")


def stage_of(stack: str, process: str = "worker") -> tuple[str, str]:
    """The stage of one collapsed stack (frames root first, ``;``-separated) of the ``worker`` or
    the ``model`` process (:data:`STAGES`, :data:`MODEL_STAGES`) and its frame that decided it.

    >>> stage_of("run (asyncio/base_events.py:1)")
    ('event loop', 'run (asyncio/base_events.py:1)')
    >>> stage_of("_execute (faust/agents/agent.py:1);__call__ (app/agents/scoring.py:9);"
    ...          "submit (app/learning/model_host.py:5)")[0]
    'model round trip (pickle, pipe, results)'
    >>> stage_of("main (x.py:1);sum (other.py:2)")[0]
    'other'
    >>> stage_of("main (app/learning/model_host.py:1);serve (app/learning/model_host.py:9)", "model")[0]
    'unpickle, pickle, pipe'
    """
    frames = stack.split(";")
    for frame in reversed(frames):
        if _GENERIC.search(frame):
            continue
        for stage, pattern in _COMPILED[process]:
            if pattern.search(frame):
                return stage, frame
    return "other", frames[-1] if frames else ""


def read_collapsed(path: Path) -> list[tuple[str, int]]:
    """py-spy's raw output: (stack, samples) per line; the thread's frame, if any, left out."""
    out = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            frames = [f for f in stack.split(";") if not f.startswith(("thread (", "process "))]
            out.append((";".join(frames), int(count)))
    return out


def profile_table(stacks: list[tuple[str, int]], cpu_us_per_event: float, top: int = 0,
                  process: str = "worker") -> list[tuple[str, int, float, list]]:
    """(stage, samples, µs per event, innermost frames) per stage of a process, most expensive first."""
    by_stage: dict[str, int] = collections.Counter()
    frames: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for stack, count in stacks:
        stage, frame = stage_of(stack, process)
        by_stage[stage] += count
        frames[stage][re.sub(r":\d+\)$", ")", frame)] += count
    total = sum(by_stage.values()) or 1
    return [(stage, n, cpu_us_per_event * n / total, frames[stage].most_common(top))
            for stage, n in sorted(by_stage.items(), key=lambda kv: -kv[1])]


class Counter:
    """The number of messages in a topic (the sum of its partitions' end offsets), asked of the
    broker by one consumer kept open (nothing is read: this process takes no CPU from the worker)."""

    def __init__(self, topic: str) -> None:
        import asyncio

        self.loop = asyncio.new_event_loop()
        self.topic = topic
        self.consumer = None
        self.partitions: list = []

    async def _count(self) -> int:
        from aiokafka import AIOKafkaConsumer

        from app.admin import bootstrap_servers, topic_partitions

        if self.consumer is None:
            self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(BROKER), enable_auto_commit=False,
                                             group_id=None)
            await self.consumer.start()
        if not self.partitions:
            self.partitions = await topic_partitions(self.consumer, self.topic, 1.0)
            if not self.partitions:
                return 0
        return sum((await self.consumer.end_offsets(self.partitions)).values())

    def __call__(self) -> int:
        return self.loop.run_until_complete(self._count())

    def close(self) -> None:
        if self.consumer is not None:
            try:
                self.loop.run_until_complete(self.consumer.stop())
            except BaseException:  # noqa: BLE001 - clean-up only
                pass
        self.loop.close()


def user_and_system_seconds(pid: int) -> tuple[float, float]:
    """A process's user and system CPU time so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


class Sampler:
    """py-spy recording one process until :meth:`stop`."""

    def __init__(self, pid: int, out: Path, rate: int) -> None:
        exe = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")
        if exe is None:
            raise SystemExit("py-spy is not installed: pip install -e '.[profile]'")
        self.out = out
        self.proc = subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking", "--gil",
                                      "--format", "raw", "--output", str(out)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> list[tuple[str, int]]:
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=60)
        if not self.out.exists():
            raise RuntimeError(f"py-spy wrote nothing: {err.decode(errors='replace')}")
        return read_collapsed(self.out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_worker", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=60000, help="ULB rows written before the worker starts")
    p.add_argument("--skip-rows", type=int, default=10000, help="scores out before the profile starts")
    p.add_argument("--profile-rows", type=int, default=40000, help="scores out while profiled")
    p.add_argument("--kind", default="arf", help="model kind (arf, lr, arf+lr)")
    p.add_argument("--trees", type=int, default=3, help="ARF trees")
    p.add_argument("--agents", default="scoring", help="FRAUD_AGENTS of the worker")
    p.add_argument("--rate", type=int, default=250, help="samples per second")
    p.add_argument("--top", type=int, default=0, help="print this many innermost frames per stage")
    p.add_argument("--raw", type=Path, default=None, help="keep py-spy's collapsed stacks in this folder")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="more worker settings")
    args = p.parse_args(argv)
    if args.skip_rows + args.profile_rows > args.rows:
        p.error("--skip-rows + --profile-rows must not exceed --rows")

    from benchmarks.scoring import model_process_of, rows_of

    rows = rows_of(args.rows)
    env = {"FRAUD_AGENTS": args.agents, "FRAUD_MODEL_KIND": args.kind, "FRAUD_ARF_TREES": str(args.trees),
           **dict(kv.split("=", 1) for kv in args.env)}
    raw = args.raw or Path(tempfile.mkdtemp(prefix="profile-worker-"))
    raw.mkdir(parents=True, exist_ok=True)
    with fresh_run("profile") as run:
        names = run.names
        run.create_topics()
        sent = replay(names, rows, labels="in-event")
        print(f"[profile] {sent.transactions} rows written in {sent.elapsed_s:.1f}s; starting the worker", flush=True)
        worker = run.start_worker(env, wait_assigned=False)
        scores_written = Counter(names.scores)
        try:
            model_pid = model_process_of(worker, wait_s=30.0)
            while (done := scores_written()) < args.skip_rows:
                if not worker.alive():
                    print(worker.log_tail())
                    return 1
                time.sleep(1.0)
            samplers = {"worker": Sampler(worker.proc.pid, raw / "worker.txt", args.rate)}
            if model_pid:
                samplers["model"] = Sampler(model_pid, raw / "model.txt", args.rate)
            pids = {"worker": worker.proc.pid, **({"model": model_pid} if model_pid else {})}
            time.sleep(0.5)  # py-spy attaches
            start_count, started = scores_written(), time.monotonic()
            cpu_before = {name: user_and_system_seconds(pid) for name, pid in pids.items()}
            load_before = load_average()
            # (the count is read every second: the worker may be well past --skip-rows by then)
            target = min(start_count + args.profile_rows, sent.transactions)
            if target - start_count < args.profile_rows // 2:
                print(f"[profile] only {target - start_count} rows left to profile once {start_count} were "
                      f"scored: give more --rows")
                return 1
            while (done := scores_written()) < target:
                if not worker.alive():
                    print(worker.log_tail())
                    return 1
                time.sleep(1.0)
            cpu = {name: tuple(b - a for a, b in zip(cpu_before[name], user_and_system_seconds(pid)))
                   for name, pid in pids.items()}
            elapsed = time.monotonic() - started
            events = done - start_count
            stacks = {name: sampler.stop() for name, sampler in samplers.items()}
        finally:
            scores_written.close()

    figures: dict[str, object] = {}
    for name, samples in stacks.items():
        user_us, system_us = (1e6 * seconds / events for seconds in cpu[name])
        us = user_us + system_us
        print(f"\n[{name}] {us:.1f} µs of CPU per event, {user_us:.1f} user + {system_us:.1f} system ({events} events "
              f"in {elapsed:.1f} s, {sum(cpu[name]) / elapsed:.2f} of a core; load {load_before:.2f} -> {load_average():.2f})")
        print("| stage | samples | µs per event |\n| --- | --- | --- |")
        for stage, n, stage_us, top in profile_table(samples, user_us, args.top, name):
            print(f"| {stage} | {n} | {stage_us:.1f} |")
            for frame, count in top:
                print(f"|   {frame} | {count} | |")
        print(f"| system calls (kernel) | | {system_us:.1f} |")
        figures[f"{name}_us_per_event"] = us
        figures[f"{name}_system_us_per_event"] = system_us
    figures.update(eps=events / elapsed, events=events, kind=args.kind, trees=args.trees, agents=args.agents,
                   load=round(load_average(), 2))
    print(f"\n[profile] collapsed stacks in {raw}")
    print(key_values(**figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
