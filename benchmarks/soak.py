"""Soak: does a worker's memory stay flat over millions of events?

    python -m benchmarks.soak                                # 2,000,000 events, the configured model
    python -m benchmarks.soak --events 500000 --kind lr --agents scoring   # shorter: the scorer alone, a cheap model
    python -m benchmarks.soak --kind lr --agents scoring --event-gap-s 3 --warmup-events 1000000
                                  # past the card windows' 30 days: their state stops growing

A real worker (``faust -A app worker``, its model process beside it) on fresh topics takes
``--events`` synthetic transactions (:mod:`app.data.synthetic`, 0.17% fraud), replayed in chunks of
``--chunk`` rows, each as soon as the worker has consumed all but one chunk before it (so it runs
at the worker's pace without a backlog: a replay far ahead of the worker would put labels on their
topic long before the worker reaches their transactions, which no real source does). Most chunks
carry their labels in the events; every ``--delayed-every``-th one sends its transactions without
them and each label ``--label-delay`` transactions later on the labels topic (so the pending table,
the label agent and the late learning run too). The rows are generated chunk by chunk, so this
process's own memory stays small.

Every ``--interval-s`` seconds it prints the events the worker has consumed (its
``fraud_events_in_total``) and the resident memory (``VmRSS`` of ``/proc/<pid>/status``) of the
worker and of its model process. The warm-up ends once the worker has consumed ``--warmup-events``
(caches, the forest's first growth, the evaluator's and pending table's fixed sizes reached); the
growth per million events is measured from there to the end, when the worker has consumed every
event. A model that keeps growing (a forest's trees) shows in the model process's figure; a leak in
the service in the worker's.

Last line: ``events warmup_events elapsed_s eps worker_rss_warmup_mb worker_rss_end_mb
worker_rss_max_mb worker_growth_mb_per_million model_rss_warmup_mb model_rss_end_mb model_rss_max_mb
model_growth_mb_per_million event_gap_s kind agents``.
"""
from __future__ import annotations

from app.testing.single_partition import use_single_partition

use_single_partition()  # before settings: one partition, a model per partition (benchmarks/README.md)

import argparse
import re
import signal
import threading
import time
from pathlib import Path

from app.testing.figures import key_values
from app.testing.replay import replay
from app.testing.run import fresh_run

import settings


def rss_mb(pid: int | None) -> float:
    """The resident memory of process ``pid`` in MB (``VmRSS``); NaN if it is gone."""
    if pid is None:
        return float("nan")
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def model_pid(worker) -> int | None:
    """The worker's model process: the pid its log names, else its child that is not
    multiprocessing's resource tracker."""
    found = re.findall(r"model process started \(pid (\d+)\)", worker.run_log_text())
    if found:
        return int(found[-1])
    for pid in worker.children():
        try:
            if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    return None


def produce(names, events: int, chunk: int, delayed_every: int, label_delay: int, seed: int,
            consumed, failures: list[BaseException], event_gap_s: float = 0.6) -> None:
    """Replay ``events`` synthetic rows to the worker's topics, chunk by chunk, each once the worker
    has ``consumed()`` all but one chunk of those before it."""
    from app.data.synthetic import generate

    try:
        sent, start_time = 0, 0.0
        base = time.time() - events * event_gap_s  # the last events come at about the wall clock
        for number in range(0, (events + chunk - 1) // chunk):
            while sent - consumed() > chunk:
                time.sleep(0.2)
            rows = generate(min(chunk, events - sent), seed=seed + number, start_time=start_time,
                            n_cards=10_000, mean_gap_s=event_gap_s)
            delayed = delayed_every > 0 and number % delayed_every == delayed_every - 1
            replay(names, rows, time_base=base, id_prefix="soak", start_index=sent,
                   labels="delayed" if delayed else "in-event", label_delay_events=label_delay if delayed else 0)
            sent += len(rows)
            start_time = float(rows[-1]["Time"]) + 1.0
    except BaseException as exc:  # noqa: BLE001 - reported by the main thread
        failures.append(exc)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2_000_000, help="transactions to stream")
    parser.add_argument("--warmup-events", type=int, default=0,
                        help="consumed events before the warm-up figure (default: 10%% of --events, at most 200,000)")
    parser.add_argument("--chunk", type=int, default=2500,
                        help="rows generated and replayed at a time; the next goes once the worker has consumed all "
                             "but one chunk (a flat-out replay far ahead of the worker would send labels long before "
                             "the worker reaches their transactions, as no real source does)")
    parser.add_argument("--delayed-every", type=int, default=4,
                        help="every N-th chunk sends its labels late on the labels topic (0: never)")
    parser.add_argument("--label-delay", type=int, default=500, help="transactions between a late label's own and it")
    parser.add_argument("--interval-s", type=float, default=15.0, help="seconds between memory readings")
    parser.add_argument("--kind", default=settings.MODEL_KIND, help="model kind (FRAUD_MODEL_KIND)")
    parser.add_argument("--trees", type=int, default=settings.ARF_TREES, help="forest size (FRAUD_ARF_TREES)")
    parser.add_argument("--agents", default=",".join(settings.AGENTS), help="the worker's agents (FRAUD_AGENTS)")
    parser.add_argument("--timeout-s", type=float, default=4 * 3600.0, help="give up after this long")
    parser.add_argument("--event-gap-s", type=float, default=0.6,
                        help="mean event-time seconds between transactions (how fast the card windows fill)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    warmup = args.warmup_events or min(200_000, args.events // 10)
    signal.signal(signal.SIGTERM, _stop)  # a run stopped early still stops its worker and deletes its topics
    agents = [agent for agent in args.agents.split(",") if agent]

    with fresh_run("soak") as run:
        env = {"FRAUD_MODEL_KIND": args.kind, "FRAUD_ARF_TREES": str(args.trees),
               "FRAUD_AGENTS": ",".join(agents)}
        worker = run.start_worker(env, wait_assigned=False)
        names = worker.names
        failures: list[BaseException] = []

        def consumed() -> float:
            return worker.metric("fraud_events_in_total", topic=names.transactions)

        producer = threading.Thread(target=produce, name="soak-replay", daemon=True, args=(
            names, args.events, args.chunk, args.delayed_every, args.label_delay, args.seed, consumed, failures,
            args.event_gap_s))
        started = time.monotonic()
        producer.start()
        model = model_pid(worker)
        worker_pid = worker.proc.pid
        warm: tuple[float, float, float] | None = None  # consumed, worker rss, model rss
        worker_max = model_max = 0.0
        print(f"worker pid {worker_pid}, model process pid {model}; {args.events} events, warm-up {warmup}",
              flush=True)
        print(f"{'elapsed_s':>9} {'consumed':>10} {'worker_mb':>10} {'model_mb':>9} {'window_keys':>11}", flush=True)
        while True:
            time.sleep(args.interval_s)
            if failures:
                raise failures[0]
            if not worker.alive():
                raise RuntimeError(f"the worker died:\n{worker.log_tail()}")
            model = model or model_pid(worker)
            count = consumed()
            worker_rss, model_rss = rss_mb(worker_pid), rss_mb(model)
            worker_max, model_max = max(worker_max, worker_rss), max(model_max, model_rss)
            keys = worker.metric("fraud_window_keys")
            print(f"{time.monotonic() - started:9.0f} {count:10.0f} {worker_rss:10.1f} {model_rss:9.1f} {keys:11.0f}",
                  flush=True)
            if warm is None and count >= warmup:
                warm = (count, worker_rss, model_rss)
            if count >= args.events:
                break
            if time.monotonic() - started > args.timeout_s:
                raise TimeoutError(f"consumed {count:.0f} of {args.events} in {args.timeout_s:.0f} s")
        elapsed = time.monotonic() - started
        assert warm is not None
        million = max(1.0, count - warm[0]) / 1e6
        print(key_values(
            events=int(count), warmup_events=int(warm[0]), elapsed_s=elapsed, eps=count / elapsed,
            worker_rss_warmup_mb=warm[1], worker_rss_end_mb=worker_rss, worker_rss_max_mb=worker_max,
            worker_growth_mb_per_million=(worker_rss - warm[1]) / million,
            model_rss_warmup_mb=warm[2], model_rss_end_mb=model_rss, model_rss_max_mb=model_max,
            model_growth_mb_per_million=(model_rss - warm[2]) / million,
            event_gap_s=args.event_gap_s, kind=args.kind, agents="+".join(agents)), flush=True)


def _stop(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    main()
