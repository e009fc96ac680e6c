"""Anomaly detection on the full ULB file, the anomaly agent's speed, and the window-feature ablation.

    .venv/bin/python benchmarks/anomaly.py                 # everything (about 10 minutes on 2 cores)
    .venv/bin/python benchmarks/anomaly.py --rows 50000 --no-agent

1. Plain River loop: ``MinMaxScaler | HalfSpaceTrees`` (settings: trees, height 8, window) and the
   settings' threshold, score then learn, over the file in order: exact ROC-AUC and PR-AUC of the
   score (scikit-learn), precision and recall of the flagged set, events/s.
2. The anomaly agent through Faust on the real broker (same detector, same order): the file is
   replayed onto fresh topics first, then a worker (``FRAUD_AGENTS=anomaly``) is started and timed
   from ready until it has consumed every transaction. Its flag count is checked against the loop's.
3. Ablation: prequential PR-AUC (and ROC-AUC) of a scorer (``app.learning.build_model``, predict
   then learn with the label in the event) with and without the model's window features
   (:class:`app.features.StreamFeatures`, the scorer's feature function as the settings configure
   it; each label reaches its terminal's windows as it is learned), on the velocity-fraud synthetic
   stream (card ids: card windows and calendar flags) and on the Handbook's simulator (``small``:
   card and terminal ids). Not on ULB: without ids its input is the same with the features on.

The last line holds the key figures as ``key=value`` pairs.
"""
from __future__ import annotations

from app.testing.single_partition import use_single_partition

use_single_partition()  # before settings: one partition, a model per partition (benchmarks/README.md)

import argparse
import asyncio
import sys
import time

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

import settings
from app import configured
from app.data import ensure_creditcard_csv, iter_rows
from app.data.simulator import CONFIGS, load
from app.data.synthetic import generate
from app.features import StreamFeatures
from app.records import FEATURE_NAMES
from app.testing.cpu import load_average
from app.testing.figures import key_values
from app.testing.run import fresh_run
from app.testing.stack import BROKER, REGISTRY


def features(row: dict) -> dict[str, float]:
    return {name: float(row[name]) for name in FEATURE_NAMES}


def river_loop(rows: list[dict]) -> dict:
    detector = configured.anomaly_detector(settings)
    xs = [features(r) for r in rows]
    scores, flagged = np.empty(len(rows)), np.zeros(len(rows), dtype=bool)
    started = time.perf_counter()
    for i, x in enumerate(xs):
        verdict = detector.process(x)
        scores[i], flagged[i] = verdict.score, verdict.flagged
    elapsed = time.perf_counter() - started
    y = np.array([int(r["Class"]) for r in rows])
    tp = int((flagged & (y == 1)).sum())
    return {
        "roc_auc": roc_auc_score(y, scores), "pr_auc": average_precision_score(y, scores),
        "flagged": int(flagged.sum()), "flagged_precision": tp / max(1, int(flagged.sum())),
        "flagged_recall": tp / max(1, int(y.sum())), "loop_eps": len(rows) / elapsed, "version": detector.version,
    }


def agent_run(rows: list[dict]) -> dict:
    from app.replay import replay

    with fresh_run("bench-anomaly") as run:
        names = run.names
        started = time.perf_counter()
        sent = asyncio.run(replay(rows, broker=BROKER, registry_url=REGISTRY, transactions_topic=names.transactions,
                                  labels_topic=names.labels, progress=False, time_base=time.time()))
        replay_s = time.perf_counter() - started
        worker = run.start_worker({"FRAUD_AGENTS": "anomaly"}, wait_assigned=False, timeout_s=120)
        t0, n = time.perf_counter(), sent.transactions
        deadline = t0 + max(600.0, n / 200)
        while (seen := worker.metric("fraud_events_in_total", topic=names.transactions)) < n:
            if time.perf_counter() > deadline or not worker.alive():
                raise RuntimeError(f"agent consumed {seen:.0f} of {n} events:\n{worker.log_tail()}")
            time.sleep(0.25)
        elapsed = time.perf_counter() - t0
        flags = worker.metric("fraud_anomalies_total")
    return {"agent_eps": n / elapsed, "agent_flagged": int(flags), "replay_eps": n / replay_s}


def prequential(rows: list[dict], kind: str, trees: int, windows: bool, raw: tuple[str, ...]) -> dict:
    """Predict then learn each row (``event_time``, ``Amount``, ``Class``, the ``raw`` fields, and
    ``card_id`` / ``terminal_id`` when it has them), with the window features when ``windows``."""
    try:
        from app.learning import build_model

        model = build_model(kind, trees=trees, seed=settings.SEED)
    except ImportError:  # a pipeline of our own when the learning package is absent
        from river import forest, linear_model, preprocessing

        model = (forest.ARFClassifier(n_models=trees, seed=settings.SEED) if kind == "arf"
                 else preprocessing.StandardScaler() | linear_model.LogisticRegression())
    sf = StreamFeatures(configured.transaction_features(settings), raw)
    probabilities = np.empty(len(rows))
    started = time.perf_counter()
    for i, row in enumerate(rows):
        x = sf.transaction(row) if windows else {name: float(row[name]) for name in raw}
        probabilities[i] = model.predict_proba_one(x).get(1, 0.0)
        y = int(row["Class"])
        model.learn_one(x, y)
        if windows:
            sf.label(row.get("terminal_id"), row["event_time"], y)
    elapsed = time.perf_counter() - started
    y = np.array([int(r["Class"]) for r in rows])
    return {"pr_auc": average_precision_score(y, probabilities), "roc_auc": roc_auc_score(y, probabilities),
            "eps": len(rows) / elapsed}


def ablation(name: str, rows: list[dict], models: list[tuple[str, int]], raw: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for kind, trees in models:
        label = f"{kind}{trees}" if kind == "arf" else kind
        base = prequential(rows, kind, trees, windows=False, raw=raw)
        win = prequential(rows, kind, trees, windows=True, raw=raw)
        print(f"ablation {name:9s} {label:5s}: PR-AUC {base['pr_auc']:.4f} -> {win['pr_auc']:.4f} with windows "
              f"(ROC-AUC {base['roc_auc']:.4f} -> {win['roc_auc']:.4f}; {base['eps']:.0f} -> {win['eps']:.0f} ev/s)",
              flush=True)
        out[f"{name}_{label}_pr_auc"] = base["pr_auc"]
        out[f"{name}_{label}_pr_auc_windows"] = win["pr_auc"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", help="a creditcard.csv (default: the cached ULB file)")
    parser.add_argument("--rows", type=int, default=None, help="first N rows only (default: all)")
    parser.add_argument("--synthetic-rows", type=int, default=200_000)
    parser.add_argument("--no-agent", action="store_true", help="skip the Faust run")
    parser.add_argument("--no-ablation", action="store_true")
    parser.add_argument("--simulator", choices=sorted(CONFIGS), default="small", help="the ablation's simulator")
    parser.add_argument("--simulator-ablation-models", default="lr,arf3")
    parser.add_argument("--synthetic-ablation-models", default="lr,arf3")
    args = parser.parse_args(argv)

    def models(spec: str) -> list[tuple[str, int]]:
        return [("arf", int(m[3:] or 3)) if m.startswith("arf") else (m, 0) for m in spec.split(",") if m]

    path = ensure_creditcard_csv(args.csv)
    rows = list(iter_rows(path, args.rows))
    print(f"{len(rows):,} rows of {path.name}, {sum(r['Class'] for r in rows)} frauds; "
          f"load average {load_average():.2f}", flush=True)
    loop = river_loop(rows)
    print(f"river loop: {loop['version']}: ROC-AUC {loop['roc_auc']:.4f} PR-AUC {loop['pr_auc']:.4f}; "
          f"{loop['flagged']} flagged, precision {loop['flagged_precision']:.4f} recall {loop['flagged_recall']:.4f}; "
          f"{loop['loop_eps']:.0f} ev/s", flush=True)
    figures = {k: loop[k] for k in ("roc_auc", "pr_auc", "flagged_precision", "flagged_recall")}
    if not args.no_agent:
        agent = agent_run(rows)
        print(f"anomaly agent (Faust, real broker): {agent['agent_eps']:.0f} ev/s, flagged {agent['agent_flagged']} "
              f"(loop: {loop['flagged']}); replay {agent['replay_eps']:.0f} ev/s; load average {load_average():.2f}",
              flush=True)
        figures.update(agent_eps=agent["agent_eps"], loop_eps=loop["loop_eps"],
                       ratio=agent["agent_eps"] / loop["loop_eps"],
                       flags_match=agent["agent_flagged"] == loop["flagged"])
    else:
        figures.update(loop_eps=loop["loop_eps"])
    if not args.no_ablation:
        synthetic = [{**r, "event_time": float(r["Time"])}
                     for r in generate(args.synthetic_rows, seed=7, velocity_fraud=True)]
        print(f"velocity synthetic: {len(synthetic):,} rows, {sum(r['Class'] for r in synthetic)} frauds "
              f"(half bursts); {len(configured.transaction_features(settings).names)} window features", flush=True)
        figures.update(ablation("synthetic", synthetic, models(args.synthetic_ablation_models), FEATURE_NAMES))
        simulated = list(load(CONFIGS[args.simulator], 0).rows())
        print(f"simulator ({args.simulator}): {len(simulated):,} rows, {sum(r['Class'] for r in simulated)} frauds",
              flush=True)
        figures.update(ablation("simulator", simulated, models(args.simulator_ablation_models), ("Amount",)))
    print(key_values(**figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
