"""Scaling out with central learning: N workers scoring 8 partitions, one learner, against the loops.

    python -m benchmarks.scaleout                          # full ULB file, 1 and 2 workers, r = 1 and 0.1
    python -m benchmarks.scaleout --rows 20000 --trees 3 --workers 2 --rates 0.1

In one run, on the ULB file in order with the labels in the events:

1. **Baselines, in this process** (:mod:`evaluation.scaleout`): the plain loop (one model predicts
   then learns every row: ``pr_auc_loop``); today's design, one model per partition of
   ``--partitions`` (rows on the partition a keyed producer writes their id to:
   ``pr_auc_per_partition``); and for each subsampling rate ``r < 1`` of ``--rates`` the loop that
   learns every fraud and a share ``r`` of the genuine rows (probabilities corrected), with its CPU
   per event (predict and learn of the kept rows).
2. **The service**, for each rate of ``--rates`` and for 1 and ``--workers`` workers: real workers
   (``faust -A app worker``, scoring only, ``LEARNING_MODE=central``, ``TOPIC_PARTITIONS`` =
   ``--partitions``) on fresh topics, the rows replayed flat out. From the scores: exact PR-AUC and
   ROC-AUC of their (corrected) probabilities, events/s from the first score to the last (the rows
   are replayed flat out unless ``--rate`` is given), and the
   staleness of each score's model version: the examples the learner had taken in before this
   transaction's example that the snapshot behind the score lacked (its example's rank is taken as
   its score's rank in processing-time order: examples are written as their transactions are
   scored). CPU per event of each worker and its model process (``/proc``, from the start of the
   replay until the learner has taken in every example); the seconds the scorers held batches for the
   staleness bound (``--max-staleness``, ``--max-wait-s``: ``STALENESS_MAX_*``) and its time-outs;
   with two workers or more, the CPU per
   event of a worker that does not run the learner is the scorer's (per transaction it scored);
   the learner's worker is the one whose ``fraud_learner_examples_received`` reaches the row count
   (with ``--learner-apart``, a worker of its own: its own app id, no agents; the N workers only score).
   How long after the last score the learner had taken in every example (``learner_behind_s``).
3. **The learner alone**, for each rate: a worker running only the learner (``FRAUD_AGENTS`` empty,
   another app id, so another consumer group) reads the examples the service wrote from the
   beginning, flat out: its rate (``learner_max_eps``) and CPU per example (worker and model
   process). Its maximum rate bounds the labelled events/s of a deployment.

The machine is shared and has 2 cores: two workers and their model processes contend for them, so
``scale`` (events/s with N workers over 1) shows this machine, not the design; the CPU per event of
each role is what a larger machine's capacity follows from. Run one benchmark at a time.

Last line (``key=value``): ``workers pr_auc_1 pr_auc_<N> pr_auc_loop pr_auc_per_partition eps_1
eps_<N> scale staleness_p50 learner_max_eps`` for the headline rate (the last of ``--rates``), then
every rate's figures with the suffix ``_r<rate>`` (``roc_auc_*``, ``staleness_p50/max``,
``cpu_ms_*``, ``scorer_cpu_ms``, ``learner_cpu_ms``, ``learner_behind_s``, the subsampled loop's
``pr_auc_loop``), then the setup.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

from app.testing.cpu import cpu_seconds, load_average
from app.testing.figures import key_values
from app.testing.kafka import read, wait_written
from app.testing.replay import replay
from app.testing.run import fresh_run


def exact(y, p) -> tuple[float, float]:
    """``(roc_auc, pr_auc)``, exact."""
    from app.learning.evaluation import exact_metrics

    m = exact_metrics(np.asarray(y), np.asarray(p), 0.5)
    return m["roc_auc"], m["pr_auc"]


def staleness(scores: list[dict]) -> np.ndarray:
    """Per score, the examples the learner had taken in before its transaction's example that the
    version behind the score lacked: the score's rank in processing-time order minus the examples
    count of its version (``<model>-g<generation>@<count>``), at least 0."""
    ordered = sorted(scores, key=lambda s: s["processing_time"])
    counts = np.array([int(s["model_version"].rsplit("@", 1)[1]) if "@" in s["model_version"] else 0
                       for s in ordered])
    return np.maximum(np.arange(len(ordered)) - counts, 0)


def rows_apart(example_rows: list[int]) -> np.ndarray:
    """Per example, in the examples topic's order, how many file rows it comes behind the newest row
    taken in before it: 0 when the partitions are scored in file order; with partitions scored out
    of step, about how far the slowest runs behind the fastest.

    >>> rows_apart([0, 1, 5, 2, 6, 3]).tolist()
    [0, 0, 0, 3, 0, 3]
    """
    rows = np.asarray(example_rows, dtype=np.int64)
    return np.maximum.accumulate(rows) - rows if len(rows) else rows


def file_order_staleness(rows: np.ndarray, learned: np.ndarray, example_rows: list[int]) -> np.ndarray:
    """Per score of file row ``rows[k]`` by a version that had taken in the first ``learned[k]``
    examples of the topic (whose file rows are ``example_rows``, in the topic's order): the rows
    before it in the file the version had not taken in. With several partitions the scorers take the
    partitions out of step, so a version can be "fresh" in examples yet miss rows just before the one
    it scores (a fraud run spread over partitions). Counted with a Fenwick tree, scores in order of
    ``learned``."""
    n = max(int(rows.max()), max(example_rows, default=0)) + 2
    tree = np.zeros(n + 1, dtype=np.int64)

    def add(i: int) -> None:
        i += 1
        while i <= n:
            tree[i] += 1
            i += i & -i

    def below(i: int) -> int:  # examples taken in with a row < i
        total = 0
        while i > 0:
            total += tree[i]
            i -= i & -i
        return int(total)

    out = np.zeros(len(rows), dtype=np.int64)
    taken = 0
    for k in np.argsort(learned, kind="stable"):
        while taken < min(int(learned[k]), len(example_rows)):
            add(example_rows[taken])
            taken += 1
        out[k] = int(rows[k]) - below(int(rows[k]))
    return out


def model_process_of(worker, wait_s: float = 30.0) -> int | None:
    from benchmarks.scoring import model_process_of as find

    return find(worker, wait_s)


def central_env(names, rate: float, args, **more: str) -> dict[str, str]:
    env = {"FRAUD_AGENTS": "scoring", "FRAUD_LEARNING_MODE": "central", "FRAUD_TOPIC_PARTITIONS": str(args.partitions),
           "FRAUD_EXAMPLES_TOPIC": f"{names.prefix}.examples", "FRAUD_SNAPSHOTS_TOPIC": f"{names.prefix}.snapshots",
           "FRAUD_LEARN_SAMPLE_RATE": repr(rate), "FRAUD_SNAPSHOT_EVERY": str(args.snapshot_every),
           "FRAUD_SNAPSHOT_EVERY_S": repr(args.snapshot_every_s), "FRAUD_MODEL_KIND": args.params["kind"],
           "FRAUD_ARF_TREES": str(args.params["trees"]), "FRAUD_WINDOW_FEATURES": "false",
           "FRAUD_STALENESS_MAX_EXAMPLES": str(args.max_staleness), "FRAUD_STALENESS_MAX_WAIT_S": repr(args.max_wait_s),
           "FRAUD_ALIGN_MAX_SKEW_S": repr(args.align_skew_s)}
    env.update(more)
    return env


def wait_metric(worker, name: str, value: float, timeout_s: float, **labels: str) -> float | None:
    """The time (monotonic) when the worker's metric reached ``value``, or None after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and worker.alive():
        if worker.metric(name, **labels) >= value:
            return time.monotonic()
        time.sleep(0.5)
    return None


def run_service(rows: list[dict], y: np.ndarray, workers: int, rate: float, args) -> dict:
    """N workers score the rows (central learning at ``rate``); then the learner alone reads the
    examples they wrote. The figures of both."""
    from app.records import Score
    from app.replay import transaction_id

    n = len(rows)
    tag = f"[service w={workers} r={rate:g}]"
    with fresh_run(f"scaleout{workers}") as run:
        names = run.names
        env = central_env(names, rate, args)
        if args.learner_apart:  # scorers only; the learner in a worker (and consumer group) of its own
            env["FRAUD_CENTRAL_LEARNER"] = "false"
            apart = central_env(names, rate, args, FRAUD_AGENTS="", FRAUD_APP_ID=f"{names.app_id}-central")
        started = [run.start_worker(env, name=f"w{i}") for i in range(workers)]
        if args.learner_apart:
            started.append(run.start_worker(apart, name="learner"))
        time.sleep(args.settle_s)  # the group's last rebalance ends before the replay starts
        pids = {}
        for worker in started:
            pids[worker.name] = worker.proc.pid
            model = model_process_of(worker)
            if model:
                pids[f"{worker.name}-model"] = model
        print(f"{tag} {workers} worker(s) ready; load {load_average():.2f}", flush=True)
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        replay_started = time.monotonic()
        sent = replay(names, rows, labels="in-event", **({"rate": args.rate} if args.rate else {}))
        print(f"{tag} replayed {sent.transactions} rows in {sent.elapsed_s:.1f} s; waiting for the scores", flush=True)
        exited = lambda: any(not w.alive() for w in started)  # noqa: E731
        wait_written(names.scores, n, timeout_s=args.timeout_s, idle_s=120.0, stop_if=exited)
        scores_done = time.monotonic()
        learner, behind_s = None, math.nan
        deadline = time.monotonic() + args.timeout_s
        while learner is None and time.monotonic() < deadline and not exited():
            learner = next((w for w in started if w.metric("fraud_learner_examples_received") >= n), None)
            if learner is None:
                time.sleep(0.5)
        if learner is not None:
            behind_s = time.monotonic() - scores_done
        cpu_s = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}  # scored and learned
        scored_by = {w.name: w.metric("fraud_events_in_total", topic=names.transactions) for w in started}
        scores = read(names.scores, Score, expect=n, timeout_s=args.timeout_s, idle_s=60.0)
        by_id: dict[str, dict] = {}
        for _, value, _, _ in scores:
            by_id.setdefault(value["transaction_id"], value)
        if len(by_id) < n:
            raise RuntimeError(f"{tag} only {len(by_id)} of {n} scores:\n" + "\n".join(w.log_tail(30) for w in started))
        ordered = [by_id[transaction_id("tx", i)] for i in range(n)]
        p = np.array([s["fraud_probability"] for s in ordered])
        times = np.array([s["processing_time"] for s in ordered])
        roc, pr = exact(y, p)
        stale = staleness(ordered)
        example_rows, seen = [], set()
        for key, _, _, _ in read(f"{names.prefix}.examples", expect=n, timeout_s=120, idle_s=10.0):
            row = int(key.decode().rsplit("-", 1)[1])
            if row not in seen:  # a duplicate (sent again after a crash) is skipped by the learner
                seen.add(row)
                example_rows.append(row)
        learned = np.array([int(s["model_version"].rsplit("@", 1)[1]) if "@" in s["model_version"] else 0
                            for s in ordered])
        file_stale = file_order_staleness(np.arange(n), learned, example_rows)
        apart = rows_apart(example_rows)
        if args.save:  # for python -m evaluation.scaleout --study versions
            import pathlib

            path = pathlib.Path(args.save) / f"versions_w{workers}_r{rate:g}.npz"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, learned=learned, example_rows=np.array(example_rows), rate=rate, pr_auc=exact(y, p)[1])
            print(f"{tag} versions and example order saved to {path}", flush=True)
        out = {"pr_auc": pr, "roc_auc": roc, "eps": (n - 1) / (times.max() - times.min()),
               "staleness_p50": float(np.median(stale)), "staleness_max": int(stale.max()),
               "file_staleness_p50": float(np.median(file_stale)),
               "file_staleness_p99": float(np.percentile(file_stale, 99)),
               "apart_p50": float(np.median(apart)), "apart_p99": float(np.percentile(apart, 99)),
               "learner_behind_s": behind_s, "wall_s": scores_done - replay_started,
               "snapshots": learner.metric("fraud_snapshots_total") if learner else math.nan,
               "held_s": sum(w.metric("fraud_staleness_held_seconds_total") for w in started),
               "timeouts": sum(w.metric("fraud_staleness_timeouts_total") for w in started)}
        for name, seconds in cpu_s.items():
            out[f"cpu_ms_{name}"] = 1000.0 * seconds / n
        scorers = [w for w in started if w is not learner]
        if scorers and scored_by[scorers[0].name]:
            w = scorers[0]
            out["scorer_cpu_ms"] = 1000.0 * (cpu_s[w.name] + cpu_s.get(f"{w.name}-model", 0.0)) / scored_by[w.name]
        print(f"{tag} PR-AUC {pr:.4f} ROC-AUC {roc:.4f}, {out['eps']:.0f} ev/s, staleness median "
              f"{out['staleness_p50']:.0f} max {out['staleness_max']} (in file order: median "
              f"{out['file_staleness_p50']:.0f}, p99 {out['file_staleness_p99']:.0f}; partitions apart: median {out['apart_p50']:.0f}, p99 {out['apart_p99']:.0f} rows; held {out['held_s']:.1f} s, "
              f"{out['timeouts']:.0f} time-outs), learner done {behind_s:.1f} s after the last "
              f"score; CPU ms per event " + ", ".join(f"{k[7:]} {v:.3f}" for k, v in out.items() if k.startswith("cpu_ms_"))
              + (f"; a scorer alone {out['scorer_cpu_ms']:.3f} ms per event it scored" if "scorer_cpu_ms" in out else "")
              + f"; load {load_average():.2f}", flush=True)
        for worker in started:
            worker.stop()
        if workers == 1:  # the learner alone, once per rate: the examples are the same whatever the workers
            out.update(learner_alone(run, names, n, rate, args))
    return out


def learner_alone(run, names, n: int, rate: float, args) -> dict:
    """A worker that runs only the learner reads the examples topic from its start, flat out."""
    tag = f"[learner alone r={rate:g}]"
    env = central_env(names, rate, args, FRAUD_AGENTS="", FRAUD_APP_ID=f"{names.app_id}-learner",
                      FRAUD_SNAPSHOTS_TOPIC=f"{names.prefix}.snapshots-learner")
    worker = run.start_worker(env, name="learner", wait_assigned=False)
    pids = {"worker": worker.proc.pid}
    model = model_process_of(worker)
    if model:
        pids["model"] = model
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    first = wait_metric(worker, "fraud_learner_examples_received", 1, 120.0)
    at_first = worker.metric("fraud_learner_examples_received")
    done = wait_metric(worker, "fraud_learner_examples_received", n, args.timeout_s)
    cpu_s = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    worker.stop()
    if first is None or done is None:
        print(f"{tag} did not take in all {n} examples:\n{worker.log_tail(30)}")
        return {"learner_max_eps": math.nan, "learner_cpu_ms": math.nan}
    # between the first poll that saw examples taken in and the one that saw them all (nan: too few rows
    # to see the learner at work between two polls)
    eps = (n - at_first) / (done - first) if at_first < n and done > first else math.nan
    cpu_ms = 1000.0 * sum(cpu_s.values()) / n
    print(f"{tag} {eps:.0f} examples/s, {cpu_ms:.3f} ms of CPU per example (worker "
          f"{1000 * cpu_s['worker'] / n:.3f}, model process {1000 * cpu_s.get('model', 0.0) / n:.3f}); "
          f"load {load_average():.2f}", flush=True)
    return {"learner_max_eps": eps, "learner_cpu_ms": cpu_ms,
            "learner_model_cpu_ms": 1000.0 * cpu_s.get("model", math.nan) / n}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scaleout", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=None, help="ULB rows (default: all 284,807)")
    p.add_argument("--workers", type=int, default=2, help="the larger number of workers (also run: 1)")
    p.add_argument("--rates", default=None,
                   help="learning sample rates, comma-separated; the last is the headline (default: 1 and the setting)")
    p.add_argument("--partitions", type=int, default=None, help="partitions of the transactions topic (default: the setting)")
    p.add_argument("--snapshot-every", type=int, default=None, help="SNAPSHOT_EVERY (examples; default: the setting)")
    p.add_argument("--snapshot-every-s", type=float, default=None, help="SNAPSHOT_EVERY_S (default: the setting)")
    p.add_argument("--max-staleness", type=int, default=None,
                   help="STALENESS_MAX_EXAMPLES (default: the setting; 0: no bound)")
    p.add_argument("--max-wait-s", type=float, default=None, help="STALENESS_MAX_WAIT_S (default: the setting)")
    p.add_argument("--align-skew-s", type=float, default=None,
                   help="ALIGN_MAX_SKEW_S: event-time alignment of the partitions (default: the setting; 0: none)")
    p.add_argument("--learner-apart", action="store_true",
                   help="the scorers only score (CENTRAL_LEARNER=false); the learner runs in a worker of its own")
    p.add_argument("--save", default=None,
                   help="a folder: each run's score versions and example order (for evaluation.scaleout --study versions)")
    p.add_argument("--kind", default=None, help="model kind (default: the setting)")
    p.add_argument("--trees", type=int, default=None, help="ARF trees (default: the setting)")
    p.add_argument("--no-baselines", action="store_true", help="skip the loops in this process")
    p.add_argument("--settle-s", type=float, default=8.0, help="wait after the workers start, before the replay")
    p.add_argument("--timeout-s", type=float, default=3600.0, help="give up waiting for scores after this")
    p.add_argument("--rate", type=float, default=None,
                   help="replay at this many events/s (default: flat out, a backlog the scorers race through)")
    args = p.parse_args(argv)
    import settings

    if args.rates is None:
        args.rates = ",".join(dict.fromkeys(["1", repr(settings.LEARN_SAMPLE_RATE)]))
    for option, setting in (("partitions", "TOPIC_PARTITIONS"), ("snapshot_every", "SNAPSHOT_EVERY"),
                            ("snapshot_every_s", "SNAPSHOT_EVERY_S")):
        if getattr(args, option) is None:
            setattr(args, option, getattr(settings, setting))
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    if args.workers < 1 or not rates or any(not 0 < r <= 1 for r in rates):
        p.error("--workers must be >= 1 and --rates in (0, 1]")

    from app import configured
    from app.data import ensure_creditcard_csv, iter_rows
    from app.learning.pipeline import model_factory
    from evaluation import scaleout as study

    params = configured.model_params(settings)
    if args.max_staleness is None:
        args.max_staleness = settings.STALENESS_MAX_EXAMPLES
    if args.max_wait_s is None:
        args.max_wait_s = settings.STALENESS_MAX_WAIT_S
    if args.align_skew_s is None:
        args.align_skew_s = settings.ALIGN_MAX_SKEW_S
    if args.kind:
        params["kind"] = args.kind
    if args.trees:
        params["trees"] = args.trees
    args.params = params
    rows = list(iter_rows(ensure_creditcard_csv(), limit=args.rows))
    n = len(rows)
    y = np.array([int(r["Class"]) for r in rows])
    print(f"rows={n} frauds={int(y.sum())} model={params} workers=1,{args.workers} rates={rates} "
          f"partitions={args.partitions}; load {load_average():.2f}", flush=True)

    figures: dict = {}
    if not args.no_baselines:
        data, factory = study.load_rows(args.rows), model_factory(**params)
        loop = study.run_sampling(data, factory, 1.0, progress_every=50_000)
        figures["pr_auc_loop"], figures["roc_auc_loop"] = loop["pr_auc"], loop["roc_auc"]
        figures["loop_cpu_ms"] = loop["learner_ms"]
        print(f"[loop] PR-AUC {loop['pr_auc']:.4f} ROC-AUC {loop['roc_auc']:.4f}, {loop['learner_ms']:.3f} ms of "
              f"CPU per event; load {load_average():.2f}", flush=True)
        parts = study.run_partitions(data, factory, args.partitions, progress_every=50_000)
        figures["pr_auc_per_partition"], figures["roc_auc_per_partition"] = parts["pr_auc"], parts["roc_auc"]
        print(f"[per partition] {args.partitions} models: PR-AUC {parts['pr_auc']:.4f} ROC-AUC {parts['roc_auc']:.4f} "
              f"(frauds per model {parts['frauds_per_model']}); load {load_average():.2f}", flush=True)
        for rate in rates:
            if rate < 1.0:
                sampled = study.run_sampling(data, factory, rate, progress_every=50_000)
                figures[f"pr_auc_loop_r{rate:g}"] = sampled["pr_auc"]
                figures[f"roc_auc_loop_r{rate:g}"] = sampled["roc_auc"]
                figures[f"loop_cpu_ms_r{rate:g}"] = sampled["learner_ms"]
                print(f"[loop r={rate:g}] PR-AUC {sampled['pr_auc']:.4f} ROC-AUC {sampled['roc_auc']:.4f}, "
                      f"{sampled['learner_ms']:.3f} ms of CPU per event; load {load_average():.2f}", flush=True)

    results: dict[tuple[float, int], dict] = {}
    for rate in rates:
        for workers in sorted({1, args.workers}):
            results[rate, workers] = run_service(rows, y, workers, rate, args)

    N = args.workers
    head = rates[-1]
    one, many = results[head, 1], results[head, N]
    line = {"workers": N, "pr_auc_1": one["pr_auc"], f"pr_auc_{N}": many["pr_auc"],
            "pr_auc_loop": figures.get("pr_auc_loop", math.nan),
            "pr_auc_per_partition": figures.get("pr_auc_per_partition", math.nan),
            "eps_1": one["eps"], f"eps_{N}": many["eps"], "scale": many["eps"] / one["eps"],
            "staleness_p50": many["staleness_p50"], "learner_max_eps": one.get("learner_max_eps", math.nan),
            "rate": head}
    for rate in rates:
        suffix = f"_r{rate:g}"
        for workers in sorted({1, N}):
            r = results[rate, workers]
            for key in ("pr_auc", "roc_auc", "eps", "staleness_p50", "staleness_max", "file_staleness_p50",
                        "file_staleness_p99", "apart_p50", "apart_p99", "held_s", "timeouts",
                        "learner_behind_s",
                        "scorer_cpu_ms", "learner_max_eps", "learner_cpu_ms", "learner_model_cpu_ms"):
                if key in r:
                    line[f"{key}_{workers}{suffix}"] = r[key]
            for key, value in r.items():
                if key.startswith("cpu_ms_"):
                    line[f"{key}_{workers}{suffix}"] = value
    line.update({k: v for k, v in figures.items() if k not in line})
    line.update(rows=n, replay_rate=args.rate or "max", kind=params["kind"], trees=params["trees"], partitions=args.partitions,
                snapshot_every=args.snapshot_every, snapshot_every_s=args.snapshot_every_s,
                max_staleness=args.max_staleness, max_wait_s=args.max_wait_s, align_skew_s=args.align_skew_s,
                learner_apart=args.learner_apart,
                load=round(load_average(), 2))
    print(key_values(**line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
