"""The local broker's JIT compilers against the scoring latency's tail: the quick compiler only (the
stack's default, ``-XX:TieredStopAtLevel=1``) against both (``KAFKA_JIT_OPTS=""``, the JVM's own default).

    python -m benchmarks.broker_jit                         # 3 rounds
    python -m benchmarks.broker_jit --rounds 2 --rate 600

Each round starts a fresh local stack for each variant (alternating which goes first), and a worker
(scoring only) on fresh topics; trains it on ``--train-rows`` rows replayed flat out; replays
``--warmup-rows`` rows at ``--rate`` events/s, not measured; then ``--rows`` more at that rate,
measured: p50/p99/max from the producer's send (the transaction's Kafka timestamp) to the score's
processing time, the broker's CPU per event, and its JIT compiler threads' share of a core. A freshly
started broker is what the tests and the short runs meet; the optimizing compiler (C2) of a broker
that has run for minutes has less left to compile, and its code costs the request threads less CPU.

The local stack must not be running (each variant starts the broker with its own options); the
benchmark stops what it started. Last line: the median of each figure per variant, and in how many
rounds the quick compiler had the lower p99.
"""
from __future__ import annotations

from app.testing.single_partition import use_single_partition

use_single_partition()  # before settings: one partition, a model per partition (benchmarks/README.md)

import argparse
import gc
import math
import os
import statistics
import time

import numpy as np

from app.testing.cpu import cpu_seconds, jit_cpu_seconds
from app.testing.figures import key_values
from app.testing.kafka import read, wait_written
from app.testing.latency import send_and_score_times
from app.testing.replay import replay
from app.testing.run import fresh_run
from app.testing.stack import broker_pid, stack_running

VARIANTS = {"c1": None, "c2": ""}  # KAFKA_JIT_OPTS: None = the stack's default (C1 only), "" = none


def measure(variant: str, rows: list[dict], args) -> dict:
    """One fresh stack with ``variant``'s JIT options, one trained worker, one measured phase."""
    from app.records import Score

    env = {k: v for k, v in os.environ.items() if k != "KAFKA_JIT_OPTS"}
    if VARIANTS[variant] is not None:
        env["KAFKA_JIT_OPTS"] = VARIANTS[variant]
    with fresh_run(f"jit{variant}", stack_env=env) as run:
        worker = run.start_worker({"FRAUD_AGENTS": "scoring"})
        train, warm, m = rows[:args.train_rows], rows[:args.warmup_rows], rows[:args.rows]
        replay(worker.names, train, labels="in-event")
        wait_written(worker.names.scores, len(train), timeout_s=600, idle_s=30.0)
        replay(worker.names, warm, labels="in-event", rate=args.rate, id_prefix="warm", linger_ms=0)
        wait_written(worker.names.scores, len(train) + len(warm), timeout_s=300, idle_s=10.0)
        broker = broker_pid()
        gc.collect()
        gc.freeze()  # the rows held here: a full collection would delay the replay
        cpu0, jit0, started = cpu_seconds(broker), jit_cpu_seconds(broker), time.monotonic()
        replay(worker.names, m, labels="in-event", rate=args.rate, id_prefix="lat", linger_ms=0)
        wall = time.monotonic() - started
        gc.unfreeze()
        expect = len(train) + len(warm) + len(m)
        wait_written(worker.names.scores, expect, timeout_s=300, idle_s=10.0)
        broker_ms = 1000.0 * (cpu_seconds(broker) - cpu0) / len(m)
        jit_cores = (jit_cpu_seconds(broker) - jit0) / wall
        scores = read(worker.names.scores, Score, expect=expect, timeout_s=300, idle_s=10.0)
        timed = send_and_score_times(scores, worker.names.transactions, "lat-", len(m))
        latencies = np.array([(scored - sent) * 1000.0 for _, sent, scored in timed])
        if not len(latencies):
            raise SystemExit(f"[{variant}] no measured transaction got a score; the worker's log ends:\n"
                             f"{worker.log_tail()}")
    if len(latencies) < len(m):
        print(f"[{variant}] {len(m) - len(latencies)} of {len(m)} transactions got no score")
    return {"p50_ms": float(np.percentile(latencies, 50)), "p99_ms": float(np.percentile(latencies, 99)),
            "max_ms": float(latencies.max()), "broker_cpu_ms": broker_ms, "jit_cores": jit_cores}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--train-rows", type=int, default=30000, help="rows the worker learns flat out first")
    p.add_argument("--warmup-rows", type=int, default=5000, help="rows at the rate, not measured")
    p.add_argument("--rows", type=int, default=16000, help="rows measured at the rate")
    p.add_argument("--rate", type=float, default=800.0, help="events/s of the warm-up and the measured phase")
    args = p.parse_args(argv)
    if args.rounds < 1 or min(args.train_rows, args.rows) < 1 or args.warmup_rows < 0 or args.rate <= 0:
        p.error("--rounds, --train-rows and --rows must be at least 1, --warmup-rows at least 0, --rate above 0")
    if stack_running():
        p.error("the local stack is running: stop it first (infra/stack.sh stop), since each variant starts "
                "the broker with its own JVM options")
    from app.data import ensure_creditcard_csv, iter_rows

    rows = list(iter_rows(ensure_creditcard_csv(), limit=max(args.train_rows, args.warmup_rows, args.rows)))
    results: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for r in range(args.rounds):
        order = list(VARIANTS) if r % 2 == 0 else list(reversed(VARIANTS))
        for variant in order:
            x = measure(variant, rows, args)
            results[variant].append(x)
            print(f"[round {r + 1}/{args.rounds}] {variant}: p50 {x['p50_ms']:.1f} ms, p99 {x['p99_ms']:.1f} ms, "
                  f"max {x['max_ms']:.0f} ms; broker {x['broker_cpu_ms']:.3f} ms of CPU per event, "
                  f"its JIT compilers {x['jit_cores']:.3f} of a core", flush=True)
    figures = {f"{v}_{k}": statistics.median(x[k] for x in results[v]) for v in VARIANTS
               for k in ("p50_ms", "p99_ms", "max_ms", "broker_cpu_ms", "jit_cores")}
    wins = sum(a["p99_ms"] < b["p99_ms"] for a, b in zip(results["c1"], results["c2"]))
    ratio = figures["c1_p99_ms"] / figures["c2_p99_ms"] if figures["c2_p99_ms"] else math.nan
    print(key_values(rounds=args.rounds, rate=args.rate, **figures, p99_ratio=ratio, c1_lower_p99_rounds=wins))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
