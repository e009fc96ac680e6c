"""Synchronous scoring over HTTP (``POST /score``) while the stream flows, against the model's own
prediction time.

    python -m benchmarks.http_scoring                          # 20,000 ULB rows to train, 200 requests/s
    python -m benchmarks.http_scoring --rate 400 --requests 4000 --stream-rate 100

In one run:

1. A real worker (``faust -A app worker``, the scoring agent, the configured model) on fresh topics
   learns ``--train-rows`` ULB rows replayed flat out with their labels.
2. The same model learns the same rows in this process (:func:`app.testing.baseline.plain_loop`);
   ``model_us`` is the median time of its ``predict_proba_one`` on the request rows: what the model
   alone costs per decision.
3. While more rows are replayed at ``--stream-rate`` events/s (the worker predicts and learns them
   meanwhile), ``--requests`` transactions (the rows after the training ones) are posted to the
   worker's ``/score`` on loopback at ``--rate`` requests/s, each sent at its time whatever the
   answers before it (an open loop: a slow answer does not slow the sending). Latency is from the
   send to the whole answer; ``rps`` is the answers per second from the first send to the last
   answer; ``stream_eps_during`` the stream's scores per second whose processing time falls
   within that span.

The machine is shared: the 1-minute load average is printed with the figures (``load``, the
higher of before and after the requests), and so is the CPU each process had while the requests
were sent and answered, in cores: the worker (``worker_cores``: its event loop serves the requests
and the stream), its model process (``model_cores``), this process, which sends the requests and
the stream (``client_cores``), and the whole machine (``busy_cores``, of ``cores``). With
``busy_cores`` near ``cores``, each process waits for a core in turn, and a request waits so four
times (it goes from the client to the worker, to the model process and back, and to the client).
Last line: ``p50_ms p99_ms rps model_us stream_eps_during``, then ``max_ms errors model_p99_us
requests rate stream_rate train_rows kind trees load worker_cores model_cores client_cores
busy_cores cores``.
"""
from __future__ import annotations

from app.testing.single_partition import use_single_partition

use_single_partition()  # before settings: one partition, a model per partition (benchmarks/README.md)

import argparse
import asyncio
import os
import time

import numpy as np

from app.testing.figures import key_values


def rows_of(n: int) -> list[dict]:
    from app.data import ensure_creditcard_csv, iter_rows

    return list(iter_rows(ensure_creditcard_csv(), limit=n))


async def post_at_rate(url: str, bodies: list[dict], rate: float, timeout_s: float = 10.0) -> list[tuple[float, float, int]]:
    """Post each body at its time (``i / rate`` seconds after the start); (sent, answered, status) of
    each, in ``time.time()`` seconds (status 0: no answer)."""
    import aiohttp

    out: list[tuple[float, float, int]] = []
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
        async def one(body: dict) -> None:
            sent = time.time()
            try:
                async with session.post(url, json=body) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, asyncio.TimeoutError):
                status = 0
            out.append((sent, time.time(), status))

        # one warm request: the connection is opened before the clock starts
        async with session.post(url, json=bodies[0]) as response:
            await response.read()
        tasks = []
        started = time.perf_counter()
        for i, body in enumerate(bodies):
            ahead = i / rate - (time.perf_counter() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
            tasks.append(asyncio.ensure_future(one(body)))
        await asyncio.gather(*tasks)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.http_scoring", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-rows", type=int, default=20000, help="ULB rows the worker learns before the requests")
    p.add_argument("--requests", type=int, default=4000, help="requests sent (the ULB rows after the training ones)")
    p.add_argument("--rate", type=float, default=200.0, help="requests per second")
    p.add_argument("--stream-rate", type=float, default=200.0, help="events per second replayed during the requests")
    p.add_argument("--kind", default=None, help="model kind: arf, lr, arf+lr (default: the setting)")
    p.add_argument("--trees", type=int, default=None, help="ARF trees (default: the setting)")
    args = p.parse_args(argv)
    if args.requests < 2 or args.rate <= 0 or args.stream_rate <= 0 or args.train_rows < 1:
        p.error("--requests needs at least 2, --rate and --stream-rate more than 0, --train-rows at least 1")

    import settings
    from app import configured
    from app.records import FEATURE_NAMES, Score
    from app.replay import to_transaction, transaction_id
    from app.testing.baseline import plain_loop
    from app.testing.cpu import cpu_seconds, load_average
    from app.testing.kafka import read, wait_written
    from app.testing.replay import ReplayThread, replay
    from app.testing.run import fresh_run
    from benchmarks.scoring import cpu_times, model_process_of

    params = configured.model_params(settings)
    if args.kind:
        params["kind"] = args.kind
    if args.trees:
        params["trees"] = args.trees
    duration_s = args.requests / args.rate
    stream_n = int(args.stream_rate * (duration_s + 10.0))  # flows from before the first request to after the last
    rows = rows_of(args.train_rows + max(args.requests, stream_n))
    train, later = rows[:args.train_rows], rows[args.train_rows:]
    request_rows = later[:args.requests]
    print(f"train_rows={len(train)} requests={len(request_rows)} rate={args.rate:g}/s stream={stream_n} rows at "
          f"{args.stream_rate:g}/s model={params}", flush=True)

    env = {"FRAUD_AGENTS": "scoring", "FRAUD_MODEL_KIND": params["kind"], "FRAUD_ARF_TREES": str(params["trees"])}
    with fresh_run("benchhttp") as run:
        worker = run.start_worker(env)
        names = worker.names
        worker_exited = lambda: worker.proc.poll() is not None  # noqa: E731
        sent = replay(names, train, labels="in-event")
        wait_written(names.scores, len(train), timeout_s=1800, idle_s=60.0, stop_if=worker_exited)
        print(f"[train] the worker learned {sent.transactions} rows", flush=True)

        loop = plain_loop(train, params)
        model = loop["model"]
        xs = [{name: float(row[name]) for name in FEATURE_NAMES} for row in request_rows]
        model_ns = []
        for x in xs:
            started = time.perf_counter_ns()
            model.predict_proba_one(x)
            model_ns.append(time.perf_counter_ns() - started)
        model_us = float(np.median(model_ns)) / 1000
        model_p99_us = float(np.percentile(model_ns, 99)) / 1000
        print(f"[model] predict_proba_one in this process: median {model_us:.0f} us, p99 {model_p99_us:.0f} us")

        stream = ReplayThread(names, later[:stream_n], labels="in-event", id_prefix="live", rate=args.stream_rate)
        stream.start()
        time.sleep(5.0)  # the stream flows before the first request
        now = time.time()
        bodies = [to_transaction(row, transaction_id("req", i), now, with_label=False)
                  for i, row in enumerate(request_rows)]
        load_before = load_average()
        # (no model process: MODEL_PROCESS off); this process sends the requests and the stream
        processes = [worker.proc.pid, model_process_of(worker), os.getpid()]
        cpu_before = [cpu_seconds(pid) if pid else 0.0 for pid in processes]
        machine_before = cpu_times()
        results = asyncio.run(post_at_rate(worker.url + "/score", bodies, args.rate))
        wall, busy, _ = (b - a for a, b in zip(machine_before, cpu_times()))
        worker_cores, model_cores, client_cores = ((cpu_seconds(pid) - before) / wall if pid else 0.0
                                                   for pid, before in zip(processes, cpu_before))
        load = max(load_before, load_average())
        stream.result(timeout_s=duration_s + 120)
        expect = len(train) + stream_n
        wait_written(names.scores, expect, timeout_s=600, idle_s=60.0, stop_if=worker_exited)
        scores = read(names.scores, Score, expect=expect, timeout_s=600, idle_s=30.0, stop_if=worker_exited)

    ok = [(s, a) for s, a, status in results if status == 200]
    errors = len(results) - len(ok)
    latencies_ms = np.array([(a - s) * 1000 for s, a in ok]) if ok else np.array([float("nan")])
    first_sent, last_answer = min(s for s, _, _ in results), max(a for _, a, _ in results)
    rps = len(ok) / (last_answer - first_sent)
    live = [v["processing_time"] for _, v, _, _ in scores if v["transaction_id"].startswith("live-")]
    stream_eps = sum(first_sent <= t <= last_answer for t in live) / (last_answer - first_sent)
    p50, p99 = float(np.percentile(latencies_ms, 50)), float(np.percentile(latencies_ms, 99))
    print(f"[http] {len(ok)} answers of {len(results)} at {rps:.0f}/s: p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
          f"max {latencies_ms.max():.1f} ms; the stream scored {stream_eps:.0f} events/s meanwhile; load {load:.2f}; "
          f"the worker had {worker_cores:.2f} of a core, its model process {model_cores:.2f}, this client "
          f"{client_cores:.2f}, the machine {busy / wall:.2f} of {os.cpu_count()} cores busy")
    print(key_values(p50_ms=p50, p99_ms=p99, rps=rps, model_us=model_us, stream_eps_during=stream_eps,
                     max_ms=float(latencies_ms.max()), errors=errors, model_p99_us=model_p99_us,
                     requests=len(results), rate=args.rate, stream_rate=args.stream_rate, train_rows=len(train),
                     kind=params["kind"], trees=params["trees"], load=load, worker_cores=worker_cores,
                     model_cores=model_cores, client_cores=client_cores, busy_cores=busy / wall,
                     cores=os.cpu_count()))
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
