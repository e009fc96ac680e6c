"""Run the whole service once on a slice of the real data and print what happened.

    python -m app.demo --rows 20000

Fetches and verifies the ULB dataset (first run only), starts the local stack when it is not
running, starts a worker, replays ``--rows`` transactions, waits for every score and prints a
summary: events in, scores out, dead letters, elapsed time, throughput, and the scorer's
prequential exact ROC-AUC and PR-AUC. It stops what it started (``--keep-stack`` keeps the stack).
"""
from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from app.process import ROOT, WorkerProcess

STACK = ROOT / "infra" / "stack.sh"
BROKER = "kafka://127.0.0.1:9092"
REGISTRY = "http://127.0.0.1:8081/apis/ccompat/v7"


def _stack_running() -> bool:
    out = subprocess.run([str(STACK), "status"], capture_output=True, text=True)
    return out.stderr.count(" running (pid") == 2


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=20_000, help="transactions to replay (default 20000)")
    p.add_argument("--source", default="ulb", help="ulb (default), synthetic, or a path to a creditcard.csv")
    p.add_argument("--rate", type=float, default=0.0, help="events per second (0 = flat out)")
    p.add_argument("--keep-stack", action="store_true", help="leave Kafka and the registry running")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the last score")
    args = p.parse_args(argv)

    from app.replay import dataset_rows

    rows = dataset_rows(args.source, args.rows)  # fetches and verifies the dataset first
    started_stack = False
    if not _stack_running():
        subprocess.run([str(STACK), "start"], check=True)
        started_stack = True
    run = f"demo-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    topics = {k: f"{run}.{k.lower().replace('_', '-')}" for k in
              ("TRANSACTIONS", "LABELS", "SCORES", "ANOMALIES", "DRIFT_ALERTS", "DEAD_LETTERS", "EXAMPLES", "SNAPSHOTS")}
    env = {"FRAUD_APP_ID": run, **{f"FRAUD_{k}_TOPIC": v for k, v in topics.items()},
           "FRAUD_KAFKA_BROKER": BROKER, "FRAUD_SCHEMA_REGISTRY_URL": REGISTRY}
    workdir = Path(tempfile.mkdtemp(prefix=f"{run}-"))
    worker = WorkerProcess(workdir, env, name="worker")
    try:
        print(f"demo: run {run}; worker log {worker.log_path}", file=sys.stderr)
        worker.start(timeout_s=120)
        t0 = time.perf_counter()
        from app.replay import replay

        stats = asyncio.run(replay(rows, broker=BROKER, registry_url=REGISTRY, transactions_topic=topics["TRANSACTIONS"],
                                   labels_topic=topics["LABELS"], rate=args.rate, total=args.rows))
        deadline = time.monotonic() + args.timeout
        scored = 0.0
        while time.monotonic() < deadline:
            scored = worker.metric("fraud_events_out_total", topic=topics["SCORES"])
            dead = worker.metric("fraud_dead_letters_total")
            if scored + dead >= stats.transactions:
                break
            if not worker.alive():
                raise RuntimeError(f"the worker died:\n{worker.log_tail()}")
            time.sleep(0.5)
        elapsed = time.perf_counter() - t0
        summary = _summary(topics["SCORES"], int(scored))
        events_in = worker.metric("fraud_events_in_total", topic=topics["TRANSACTIONS"])
        print(f"events in:     {events_in:.0f} (sent {stats.transactions}, {stats.frauds} fraud)")
        print(f"scores out:    {scored:.0f}")
        print(f"dead letters:  {worker.metric('fraud_dead_letters_total'):.0f}")
        print(f"elapsed:       {elapsed:.1f} s ({stats.transactions / elapsed:.0f} events/s end to end)")
        print(summary)
        return 0 if scored >= stats.transactions else 1
    finally:
        worker.stop()
        if started_stack and not args.keep_stack:
            subprocess.run([str(STACK), "stop"], check=False)


def _summary(scores_topic: str, expect: int) -> str:
    from sklearn.metrics import average_precision_score, roc_auc_score

    from app.admin import read_topic
    from app.records import Score
    from app.serialization import ConfluentAvroCodec, make_registry_client

    codec = ConfluentAvroCodec(make_registry_client(REGISTRY), scores_topic, Score.avro_schema_to_python())
    scores = asyncio.run(read_topic(BROKER, scores_topic, codec.loads, expect=expect, timeout_s=120))
    labelled = [(v["label"], v["fraud_probability"]) for _, v, _, _ in scores if v["label"] is not None]
    if not labelled or len({y for y, _ in labelled}) < 2:
        return "prequential:  not enough labelled events for ROC-AUC / PR-AUC"
    y = [a for a, _ in labelled]
    p = [b for _, b in labelled]
    return (f"prequential:  ROC-AUC {roc_auc_score(y, p):.3f}, PR-AUC {average_precision_score(y, p):.3f} "
            f"(exact, over {len(labelled)} labelled scores; model {scores[-1][1]['model_version']})")


if __name__ == "__main__":
    sys.exit(main())
