"""Scoring throughput, latency and prequential quality: the service against a plain River loop.

    python -m benchmarks.scoring                      # full ULB file, the default model
    python -m benchmarks.scoring --rows 50000 --trees 3 --kind arf+lr
    python -m benchmarks.scoring --rows 100000 --kind arf --trees 3 --agents scoring,anomaly,drift

In one run:

1. **Plain loop** - the same model (``OnlineLearner`` over ``build_model``) predicts then learns each
   row in file order, in this process: events/s and exact prequential ROC-AUC / PR-AUC. When the
   model is the ``arf+lr`` blend, its members' own probabilities are kept too, which gives the
   ``arf``, ``lr`` (and ``lr_weighted``) baselines of the same run for free (each member learns
   exactly as it would alone).
2. **Service** - a real worker (``faust -A app worker``) on fresh topics; the rows are replayed flat
   out with in-event labels; events/s from the first score to the last (the worker's processing
   times: the scores are read once all are written, so that this process's consumer does not take
   CPU from the service while it runs); exact prequential metrics from the scores; the largest
   difference to the loop's probability per transaction.
3. **Latency** - ``--latency-rows`` more rows replayed flat out measure what the trained model
   scores now (``max_eps``: a grown forest is slower than the run's average), then, at
   ``--rate-fraction`` of that rate, ``--warmup-rows`` rows not measured and as many as the first
   time measured: p50/p99 from the producer's send (the Kafka timestamp of the transaction) to the
   score's processing time.

With ``--agents scoring,anomaly,drift`` (the product as shipped) the worker runs the three agents
and the plain loop does the three models' work on each row in one process
(:func:`~app.testing.baseline.all_agents_loop`: the model, the Half-Space-Trees detector, the drift
monitors of the input features and of the score and error). The service's rate then runs from the
first score to the moment every agent is done with every row (``fraud_agent_events_total``, read
from the worker every ``--poll-s`` while it runs), and the last line adds ``all_agents_ratio`` and
``all_agents_p99_ms`` (the ``ratio`` and the score's ``p99_ms`` of such a run).

The machine is shared: the 1-minute load average is printed before and after each phase, and
beside the wall-clock rates come the rates per CPU second (the loop's process time; the worker
process's user+system time from the first replayed row to the last score), whose ratio
``cpu_ratio`` says what the framework costs per event regardless of how busy the machine is. The
model process bounds the flat-out rate: its CPU per event (``service_model_cpu_ms``, against the
loop's ``1000 / loop_cpu_eps``) and the share of a core it had from the start of the replay to the
last score (``service_model_cores``; below 1, it waited for work or for a core) say which way a low ``ratio`` went
(``worker_us_per_event``: the worker's CPU per event flat out; ``model_overhead``: how much more CPU
per event the model process spends than the loop, 0.1 for 10% more: unpickling, pickling, the pipe). In
the measured latency phase, the CPU time per event of the worker and of its model process
(``latency_worker_cpu_ms``, ``latency_model_cpu_ms``; compare with the loop's ``1000 / loop_cpu_eps``)
says how much the small batches of a fixed rate cost beyond the flat-out ones, and
``latency_busy_cores`` how busy the whole machine was meanwhile (``latency_steal_cores``: the CPU
time the hypervisor took). The local broker's CPU per event (``latency_broker_cpu_ms``) and its JIT
compiler threads' share of a core during the warm-up and the measured phase
(``warmup_broker_jit_cores``, ``latency_broker_jit_cores``) say whether the broker was still
compiling: a freshly started one compiles the paths of one-record produce requests for about 15 s,
and those bursts delay every transaction in flight.
"""
from __future__ import annotations

from app.testing.single_partition import use_single_partition

use_single_partition()  # before settings: one partition, a model per partition (benchmarks/README.md)

import argparse
import contextlib
import gc
import math
import os
import threading
import time
from pathlib import Path

import numpy as np

from app.testing.baseline import all_agents_loop, plain_loop
from app.testing.cpu import cpu_seconds, jit_cpu_seconds, load_average, wait_quiet
from app.testing.figures import key_values
from app.testing.kafka import read, wait_written
from app.testing.latency import send_and_score_times
from app.testing.replay import replay
from app.testing.run import fresh_run
from app.testing.worker import stopped
from app.testing.stack import broker_pid


def rows_of(n: int | None) -> list[dict]:
    from app.data import ensure_creditcard_csv, iter_rows

    return list(iter_rows(ensure_creditcard_csv(), limit=n))


def exact(y, p) -> tuple[float, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(y)
    if y.min() == y.max():
        return math.nan, math.nan
    return float(roc_auc_score(y, p)), float(average_precision_score(y, p))


def cpu_times() -> tuple[float, float, float]:
    """Wall time, and the machine's busy and stolen CPU seconds so far (all cores, ``/proc/stat``)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    tick = os.sysconf("SC_CLK_TCK")
    return time.monotonic(), (user + nice + system + irq + softirq + steal) / tick, steal / tick


def model_process_of(worker, wait_s: float = 0.0) -> int | None:
    """The pid of the worker's model process (its child running ``app.learning.model_host``), if any
    (waiting up to ``wait_s`` for it to start)."""
    deadline = time.monotonic() + wait_s
    while True:
        for pid in worker.children():
            try:
                if b"app.learning.model_host" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return pid
            except OSError:  # exited meanwhile
                continue
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


AGENTS = ("scoring", "anomaly", "drift")


def agent_counters(agents: list[str], s) -> list[str]:
    """The ``fraud_agent_events_total`` labels of the work a worker running ``agents`` does on each
    transaction (settings ``s``) besides scoring it (the scores' processing times say when that is
    done)."""
    counters = []
    if "anomaly" in agents:
        counters.append("anomaly")
    if "drift" in agents:
        if s.DRIFT_FEATURES or s.DRIFT_MITIGATION == "challenger":
            counters.append("drift-transactions")
        if s.DRIFT_MONITOR_SCORES:
            counters.append("drift-scores")
    return counters


class AgentsDone:
    """Polls a worker's ``fraud_agent_events_total`` every ``every_s`` in a thread of this process:
    the time each of ``agents`` reached ``n`` events (:meth:`finished`), taken as the midpoint
    between the last reading below ``n`` and the first at ``n`` (within ``every_s / 2``)."""

    def __init__(self, worker, agents: list[str], n: int, every_s: float) -> None:
        self.worker, self.agents, self.n, self.every_s = worker, agents, n, every_s
        self.reached: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        before = time.time()
        while not self._stop.is_set() and len(self.reached) < len(self.agents):
            text, now = self.worker.metrics_text(), time.time()
            for agent in self.agents:
                if agent not in self.reached and _counter(text, agent) >= self.n:
                    self.reached[agent] = (before + now) / 2.0
            before = now
            self._stop.wait(self.every_s)

    def finished(self, timeout_s: float) -> float | None:
        """When the last agent reached ``n`` (None if one did not within ``timeout_s``)."""
        self._thread.join(timeout_s)
        self._stop.set()
        return max(self.reached.values()) if len(self.reached) == len(self.agents) else None


def _counter(metrics_text: str, agent: str) -> float:
    prefix = f'fraud_agent_events_total{{agent="{agent}"}} '
    for line in metrics_text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    return 0.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scoring", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=None, help="ULB rows (default: all 284,807)")
    p.add_argument("--kind", default=None, help="model kind: arf, lr, arf+lr (default: the setting)")
    p.add_argument("--trees", type=int, default=None, help="ARF trees (default: the setting)")
    p.add_argument("--latency-rows", type=int, default=20000, help="rows replayed at a fixed rate for latency")
    p.add_argument("--rate-fraction", type=float, default=0.5,
                   help="latency rate, as a fraction of the trained model's flat-out rate (max_eps_trained)")
    p.add_argument("--warmup-rows", type=int, default=20000,
                   help="rows replayed at the latency rate before the measured ones, not measured (a freshly "
                        "started broker JIT-compiles the paths of one-record produce requests meanwhile)")
    p.add_argument("--timeout-s", type=float, default=3600.0, help="give up waiting for scores after this")
    p.add_argument("--latency-csv", type=Path, default=None,
                   help="write each latency-phase transaction's send and score times (seconds) to this CSV")
    p.add_argument("--agents", default="scoring",
                   help="the worker's agents, comma-separated (scoring, anomaly, drift; scoring first): "
                        "with more than scoring the loop does all their models' work")
    p.add_argument("--backlog", action="store_true",
                   help="write the flat-out rows while the worker and its model process are stopped (SIGSTOP), "
                        "then let them work through the backlog: the cores are the service's alone, as the "
                        "loop has them (by default the rows are replayed while the worker scores them)")
    p.add_argument("--poll-s", type=float, default=0.25,
                   help="with more agents than scoring, how often their progress is read from the worker")
    args = p.parse_args(argv)
    agents = [a for a in args.agents.split(",") if a]
    if not agents or agents[0] != "scoring" or any(a not in AGENTS for a in agents) or len(set(agents)) < len(agents):
        p.error(f"--agents: scoring first, then any of anomaly, drift (got {args.agents!r})")
    if args.latency_rows < 2 or (args.rows is not None and args.rows < 2):
        p.error("--rows and --latency-rows need at least 2 rows (a rate is measured between the first and last)")
    if not 0 < args.rate_fraction <= 1:
        p.error("--rate-fraction must be in (0, 1]")

    import settings
    from app import configured
    from app.records import Score

    params = configured.model_params(settings)
    if args.kind:
        params["kind"] = args.kind
    if args.trees:
        params["trees"] = args.trees
    rows = rows_of(args.rows)
    n = len(rows)
    frauds = sum(int(r["Class"]) for r in rows)
    print(f"rows={n} frauds={frauds} model={params}")

    # 1. the plain loop
    print(f"[loop] load before: {load_average():.2f}", flush=True)
    loop = plain_loop(rows, params) if agents == ["scoring"] else all_agents_loop(rows, params, settings)
    loop_roc, loop_pr = exact(loop["y"], loop["p"])
    if agents != ["scoring"]:
        print(f"[loop] the work of {', '.join(agents)} on each row: {loop['flagged']} anomalies flagged")
    print(f"[loop] {loop['eps']:.0f} ev/s ({loop['cpu_eps']:.0f} per CPU second), ROC-AUC {loop_roc:.4f}, PR-AUC {loop_pr:.4f}; load after {load_average():.2f}")
    baselines = {}
    if loop["members"] is not None and params["kind"] == "arf+lr":
        for i, name in enumerate(("arf", "lr", "lr_weighted")[:loop["members"].shape[1]]):
            roc, pr = exact(loop["y"], loop["members"][:, i])
            baselines[name] = (roc, pr)
            print(f"[loop] member {name} alone (same run): ROC-AUC {roc:.4f}, PR-AUC {pr:.4f}")

    # 2. the service, flat out
    env = {"FRAUD_AGENTS": ",".join(agents), "FRAUD_MODEL_KIND": params["kind"], "FRAUD_ARF_TREES": str(params["trees"])}
    with fresh_run("benchscore") as run:
        worker = run.start_worker(env)
        names = worker.names
        print(f"[service] load before: {load_average():.2f}", flush=True)
        # the same process all run long: if it dies, the worker exits and the run ends
        model_pid = model_process_of(worker, wait_s=30.0 if settings.MODEL_PROCESS else 0.0)
        pids = [pid for pid in (worker.proc.pid, model_pid) if pid]
        for pid in pids:  # their start-up (imports, opening the learner) is not per event
            wait_quiet(pid)
        with stopped(*pids) if args.backlog else contextlib.nullcontext():
            if args.backlog:
                sent = replay(names, rows, labels="in-event")
            cpu_before = cpu_seconds(worker.proc.pid)
            model_cpu_before = cpu_seconds(model_pid) if model_pid else math.nan
            replay_started = time.time()  # the clock of the scores' processing times
        counters = agent_counters(agents, settings)
        agents_done = AgentsDone(worker, counters, n, args.poll_s) if counters else None
        if not args.backlog:
            sent = replay(names, rows, labels="in-event")
        print(f"[service] {'wrote' if args.backlog else 'replayed'} {sent.transactions} rows in {sent.elapsed_s:.1f}s"
              f"{' while the worker was stopped' if args.backlog else ''}; waiting for scores", flush=True)
        worker_exited = lambda: worker.proc.poll() is not None  # noqa: E731
        wait_written(names.scores, n, timeout_s=args.timeout_s, idle_s=30.0, stop_if=worker_exited)
        if agents_done is not None:  # the CPU figures below cover every agent's work on every row
            finished = agents_done.finished(timeout_s=args.timeout_s)
            if finished is None:
                print(f"[service] the agents did not all finish: {agents_done.reached} of {counters}:\n{worker.log_tail()}")
                return 1
        model_cpu_s = cpu_seconds(model_pid) - model_cpu_before if model_pid else math.nan
        scores = read(names.scores, Score, expect=n, timeout_s=args.timeout_s, idle_s=30.0, stop_if=worker_exited)
        service_cpu_eps = n / (cpu_seconds(worker.proc.pid) - cpu_before)
        by_id: dict[str, dict] = {}
        for _, value, _, _ in scores:
            by_id.setdefault(value["transaction_id"], value)
        if len(by_id) < n:
            print(f"[service] only {len(by_id)} of {n} scores arrived:\n{worker.log_tail()}")
            return 1
        from app.replay import transaction_id

        ordered = [by_id[transaction_id("tx", i)] for i in range(n)]
        times = np.array([s["processing_time"] for s in ordered])
        last_done = times.max()
        if agents_done is not None:  # every agent done with every row, not only the scoring
            last_done = max(last_done, finished)
            print(f"[service] each agent done with the {n} rows, seconds after the last score: " + ", ".join(
                f"{agent} {at - times.max():.2f}" for agent, at in sorted(agents_done.reached.items())))
        service_eps = (n - 1) / (last_done - times.min())
        service_p = np.array([s["fraud_probability"] for s in ordered])
        service_roc, service_pr = exact(loop["y"], service_p)
        max_diff = float(np.max(np.abs(service_p - loop["p"])))
        print(f"[service] {service_eps:.0f} ev/s ({service_cpu_eps:.0f} per CPU second of the worker), ROC-AUC {service_roc:.4f}, PR-AUC {service_pr:.4f}, "
              f"max |p_service - p_loop| = {max_diff:.3g}; load after {load_average():.2f}")
        # the model process is what bounds the flat-out rate: its CPU per event against the loop's,
        # and how much of a core it had from the start of the replay to the last score (the same
        # span as its CPU time, which includes opening the learner; 1.0: it never waited)
        service_model_cpu_ms = 1000.0 * model_cpu_s / n
        service_model_cores = model_cpu_s / (last_done - replay_started)
        print(f"[service] the model process: {service_model_cpu_ms:.3f} ms of CPU per event (the loop "
              f"{1000.0 / loop['cpu_eps']:.3f}), {service_model_cores:.2f} of a core from the start of the replay "
              f"to the last score")

        # 3. the trained model's maximum now (a bigger forest is slower than the average), then
        # latency at a fixed fraction of it
        m = min(args.latency_rows, n)
        replay(names, rows[:m], labels="in-event", id_prefix="max")
        wait_written(names.scores, n + m, timeout_s=args.timeout_s, idle_s=30.0, stop_if=worker_exited)
        burst = read(names.scores, Score, expect=n + m, timeout_s=args.timeout_s, idle_s=30.0, stop_if=worker_exited)
        burst_scores = [v["processing_time"] for _, v, _, _ in burst if v["transaction_id"].startswith("max-")]
        if worker_exited() or len(burst_scores) < m:  # (m >= 2: checked with the arguments)
            print(f"[latency] {len(burst_scores)} of the {m} flat-out rows were scored "
                  f"({'the worker exited' if worker_exited() else 'no more came'}):\n{worker.log_tail()}")
            return 1
        max_eps = (len(burst_scores) - 1) / (max(burst_scores) - min(burst_scores))
        rate = args.rate_fraction * max_eps
        print(f"[latency] the trained model scores {max_eps:.0f} ev/s flat out; {m} rows at {rate:.0f} ev/s; "
              f"load before: {load_average():.2f}", flush=True)
        # a warm-up at that rate first: one-record produce requests, sent one by one, take other
        # paths through the broker than the batches before; a fresh broker JIT-compiles them
        # (with the JVM's optimizing compiler, which the local stack leaves out by default, its C2
        # thread was busy for 0.2-0.6 of a core in bursts: benchmarks/broker_jit.py)
        broker = broker_pid()
        w = min(args.warmup_rows, n)
        warmup_jit_cores = math.nan
        if w:
            jit_before, warm_started = (jit_cpu_seconds(broker) if broker else 0.0), time.monotonic()
            replay(names, rows[:w], labels="in-event", rate=rate, id_prefix="warm", linger_ms=0)
            if broker:
                warmup_jit_cores = (jit_cpu_seconds(broker) - jit_before) / (time.monotonic() - warm_started)
            wait_written(names.scores, n + m + w, timeout_s=300, idle_s=10.0, stop_if=worker_exited)
            if worker_exited():
                print(f"[latency] the worker exited during the warm-up:\n{worker.log_tail()}")
                return 1
        # the rows and scores this process holds are hundreds of thousands of objects: a full
        # collection of them pauses the producer for 100+ ms, a delay of the replay, not of the
        # service (the send time is stamped before it)
        gc.collect()
        gc.freeze()
        pids = {"worker": worker.proc.pid, **({"model": model_pid} if model_pid else {}),
                **({"broker": broker} if broker else {})}
        cpu_at_start = {name: cpu_seconds(pid) for name, pid in pids.items()}
        jit_at_start = jit_cpu_seconds(broker) if broker else math.nan
        machine_at_start = cpu_times()
        replay(names, rows[:m], labels="in-event", rate=rate, id_prefix="lat", linger_ms=0)
        gc.unfreeze()
        wall, busy, stolen = (b - a for a, b in zip(machine_at_start, cpu_times()))
        jit_cores = (jit_cpu_seconds(broker) - jit_at_start) / wall if broker else math.nan
        # the last transactions may still be scored: reading every score now would take this
        # process's CPU from the service while it does (end offsets only until all are written)
        wait_written(names.scores, n + 2 * m + w, timeout_s=300, idle_s=10.0, stop_if=worker_exited)
        # CPU per event at this rate: small batches cost more per event than the flat-out ones
        cpu_ms = {name: 1000.0 * (cpu_seconds(pid) - cpu_at_start[name]) / m for name, pid in pids.items()}
        later = read(names.scores, Score, expect=n + 2 * m + w, timeout_s=300, idle_s=10.0,
                     stop_if=worker_exited)
        if worker_exited():
            print(f"[latency] the worker exited:\n{worker.log_tail()}")
            return 1
        timed = send_and_score_times(later, names.transactions, "lat-", m)
        latencies_ms = np.array([(scored - sent) * 1000.0 for _, sent, scored in timed])
        if args.latency_csv:
            with open(args.latency_csv, "w") as out:
                out.write("transaction_id,sent_s,scored_s,latency_ms\n")
                for (t, sent, scored), latency_ms in zip(timed, latencies_ms):
                    out.write(f"{t},{sent:.6f},{scored:.6f},{latency_ms:.3f}\n")
            print(f"[latency] per-transaction times in {args.latency_csv}")
        p50, p99 = (float(np.percentile(latencies_ms, q)) for q in (50, 99)) if len(latencies_ms) else (math.nan,) * 2
        print(f"[latency] {len(latencies_ms)} scores: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
              f"max {latencies_ms.max():.1f} ms; CPU per event: "
              + ", ".join(f"{name} {ms:.2f} ms" for name, ms in cpu_ms.items())
              + f"; the machine {busy / wall:.2f} cores busy while replaying ({stolen / wall:.2f} stolen), the "
              f"broker's JIT compiler {jit_cores:.3f} (in the warm-up {warmup_jit_cores:.3f}); "
              f"load after {load_average():.2f}")
        checkpoints = worker.metric("fraud_checkpoint_seconds_count")
        checkpoint_ms = 1000.0 * worker.metric("fraud_checkpoint_seconds_sum") / max(checkpoints, 1)
        checkpoint_mb = worker.metric("fraud_checkpoint_bytes") / 1e6
        print(f"[worker] {checkpoints:.0f} checkpoints, {checkpoint_ms:.0f} ms each on average, the last "
              f"{checkpoint_mb:.1f} MB")

    figures = dict(
        loop_eps=loop["eps"], service_eps=service_eps, ratio=service_eps / loop["eps"], p50_ms=p50, p99_ms=p99,
        service_pr_auc=service_pr, loop_pr_auc=loop_pr, service_roc_auc=service_roc, loop_roc_auc=loop_roc,
        max_abs_diff=max_diff, max_eps_trained=max_eps, checkpoint_ms=checkpoint_ms, checkpoint_mb=checkpoint_mb, latency_rate=rate, loop_cpu_eps=loop["cpu_eps"], service_cpu_eps=service_cpu_eps,
        cpu_ratio=service_cpu_eps / loop["cpu_eps"], service_model_cpu_ms=service_model_cpu_ms,
        worker_us_per_event=1e6 / service_cpu_eps,
        # (against a loop that also does the anomaly and drift work, which the worker does: no overhead figure)
        model_overhead=service_model_cpu_ms * loop["cpu_eps"] / 1000.0 - 1.0 if agents == ["scoring"] else math.nan,
        service_model_cores=service_model_cores,
        **{f"latency_{name}_cpu_ms": ms for name, ms in cpu_ms.items()},
        latency_busy_cores=busy / wall, latency_steal_cores=stolen / wall,
        latency_broker_jit_cores=jit_cores, warmup_broker_jit_cores=warmup_jit_cores,
    )
    if agents != ["scoring"]:
        figures.update(all_agents_ratio=figures["ratio"], all_agents_p99_ms=p99)
    for name, (roc, pr) in baselines.items():
        figures[f"{name}_only_pr_auc"] = pr
        figures[f"{name}_only_roc_auc"] = roc
    figures.update(rows=n, warmup_rows=w, backlog=args.backlog, agents=",".join(agents), kind=params["kind"], trees=params["trees"], gc_freeze=settings.GC_FREEZE,
                   model_process=settings.MODEL_PROCESS, model_chunk=settings.MODEL_CHUNK,
                   load=round(load_average(), 2))
    print(key_values(**figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
