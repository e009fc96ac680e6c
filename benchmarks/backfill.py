"""Spark backfill on the full ULB file: rows/s of each job, parity with the stream's window code,
and a warm-started model against a cold one on the events after the warm-start point.

    .venv/bin/python benchmarks/backfill.py                 # configured model (settings.MODEL_KIND)
    .venv/bin/python benchmarks/backfill.py --model-kind lr --master local[2]

1. features   - window features of every row (Spark), vs the same code in one plain Python pass
               (same run baseline); parity = every feature of every row equal (the ULB file has no
               card ids: one global key), and the same on synthetic rows with card ids.
2. warm-start - the model learns every row before the last ``--eval`` rows, in event order.
3. scores     - that checkpoint scores every row (mapInPandas), vs a plain predict loop.
4. warm vs cold - prequential (predict, then learn) over the ``--eval`` rows after the warm-start
               point: exact PR-AUC and ROC-AUC of the warm-started and of a fresh model.

The stack is not needed (the jobs read the file). Last line: key=value pairs.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

import settings
from app import configured
from app.backfill.features import feature_columns
from app.backfill.jobs import run_features, run_scores, run_warm_start
from app.backfill.scores import model_input_columns
from app.backfill.session import build_session
from app.data import ensure_creditcard_csv, iter_rows
from app.data.synthetic import generate, write_csv
from app.learning import OnlineLearner
from app.learning.evaluation import exact_metrics


def plain_features(rows, time_base=0.0):
    wf = configured.window_features(settings)
    started = time.perf_counter()
    out = [wf.update(r.get("card_id") or None, time_base + float(r["Time"]), float(r["Amount"])) for r in rows]
    return out, time.perf_counter() - started


def same(expected: list[dict], table: list[dict], names: list[str]) -> bool:
    if len(expected) != len(table):
        return False
    return all(abs(e[n] - t[n]) <= 1e-9 * max(1.0, abs(e[n])) for e, t in zip(expected, table) for n in names)


def prequential(learner, rows, columns):
    y, p = [], []
    started = time.perf_counter()
    for r in rows:
        x = {c: float(r[c]) for c in columns}
        p.append(learner.predict_proba(x))
        y.append(int(r["Class"]))
        learner.learn(x, y[-1])
    return exact_metrics(y, p, 0.5), time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--model-kind", default=None, help="override MODEL_KIND")
    ap.add_argument("--eval", type=int, default=10_000, help="events after the warm-start point")
    ap.add_argument("--baseline-rows", type=int, default=20_000, help="rows of the plain learn/predict loops")
    args = ap.parse_args()

    csv_path = ensure_creditcard_csv()
    rows = list(iter_rows(csv_path))
    n = len(rows)
    columns = model_input_columns()
    factory = configured.model_factory(settings, **({"kind": args.model_kind} if args.model_kind else {}))
    print(f"ULB rows: {n}; model: {OnlineLearner(factory).version}; master: {args.master}")
    spark = build_session(args.master, app_name="fraud-backfill-benchmark")
    work = Path(tempfile.mkdtemp(prefix="backfill-bench-"))
    try:
        # 1. features + parity
        feats = run_features(spark, str(csv_path), str(work / "features"))
        expected, plain_s = plain_features(rows)
        names = feature_columns()
        table = pq.read_table(work / "features", columns=["transaction_id", *names]).to_pylist()
        parity_ulb = same(expected, table, names)
        synth = generate(20_000, seed=1, velocity_fraud=True, fraud_rate=0.01, n_cards=200)
        write_csv(synth, work / "synthetic.csv")
        run_features(spark, str(work / "synthetic.csv"), str(work / "synthetic-features"))
        synth_table = pq.read_table(work / "synthetic-features", columns=names).to_pylist()
        parity_cards = same(plain_features(synth)[0], synth_table, names)
        parity = parity_ulb and parity_cards
        print(f"features:   {feats['rows']} rows in {feats['seconds']:.1f}s = {feats['rows_s']:.0f} rows/s "
              f"(plain Python pass of the same code: {n / plain_s:.0f} rows/s, ratio {feats['rows_s'] * plain_s / n:.2f}); "
              f"parity ULB={parity_ulb} synthetic-with-cards={parity_cards}")

        # 2. warm start on everything before the last --eval rows
        split_index = n - args.eval
        split_time = float(rows[split_index]["Time"])
        while split_index > 0 and float(rows[split_index - 1]["Time"]) >= split_time:
            split_index -= 1  # ties stay together on the evaluation side
        warm = run_warm_start(spark, str(csv_path), str(work / "warm.ckpt"), learner=OnlineLearner(factory),
                              window_features=False, until_event_time=split_time)
        base = OnlineLearner(factory)
        t = time.perf_counter()
        for r in rows[: args.baseline_rows]:
            base.learn({c: float(r[c]) for c in columns}, int(r["Class"]))
        learn_rate = args.baseline_rows / (time.perf_counter() - t)
        print(f"warm-start: {warm['rows']} rows in {warm['seconds']:.1f}s = {warm['rows_s']:.0f} rows/s "
              f"(plain learn loop, first {args.baseline_rows} rows: {learn_rate:.0f} rows/s, ratio {warm['rows_s'] / learn_rate:.2f})")

        # 3. scores of every row by that checkpoint
        scores = run_scores(spark, str(csv_path), str(work / "warm.ckpt"), str(work / "scores"), window_features=False)
        learner = warm["learner"]
        t = time.perf_counter()
        for r in rows[: args.baseline_rows]:
            learner.predict_proba({c: float(r[c]) for c in columns})
        predict_rate = args.baseline_rows / (time.perf_counter() - t)
        print(f"scores:     {scores['rows']} rows in {scores['seconds']:.1f}s = {scores['rows_s']:.0f} rows/s "
              f"(plain predict loop: {predict_rate:.0f} rows/s, ratio {scores['rows_s'] / predict_rate:.2f})")
    finally:
        spark.stop()

    # 4. warm vs cold, prequential over the events after the warm-start point
    after = rows[split_index: split_index + args.eval]
    warm_m, _ = prequential(OnlineLearner.load(work / "warm.ckpt"), after, columns)
    shutil.rmtree(work, ignore_errors=True)
    cold_m, _ = prequential(OnlineLearner(factory), after, columns)
    frauds = sum(int(r["Class"]) for r in after)
    print(f"first {len(after)} events after the warm-start point ({frauds} frauds), prequential:")
    print(f"  warm (learned {warm['rows']} rows): PR-AUC {warm_m['pr_auc']:.3f}  ROC-AUC {warm_m['roc_auc']:.3f}")
    print(f"  cold (fresh model):           PR-AUC {cold_m['pr_auc']:.3f}  ROC-AUC {cold_m['roc_auc']:.3f}")
    print(f"features_rows_s={feats['rows_s']:.0f} scores_rows_s={scores['rows_s']:.0f} "
          f"warm_start_rows_s={warm['rows_s']:.0f} parity={'ok' if parity else 'fail'} "
          f"warm_pr_auc={warm_m['pr_auc']:.3f} cold_pr_auc={cold_m['pr_auc']:.3f}")
    return 0 if parity else 1


if __name__ == "__main__":
    sys.exit(main())
