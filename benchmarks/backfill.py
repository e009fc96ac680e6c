"""Spark backfill: rows/s of each job, parity of the features job with the stream's feature code on
the Handbook's simulator, and a warm-started model against a cold one on the ULB file.

    .venv/bin/python benchmarks/backfill.py                 # configured model (settings.MODEL_KIND)
    .venv/bin/python benchmarks/backfill.py --model-kind lr --master local[2] --simulator published

1. features   - the model's window features of every transaction of the simulator's ``--simulator``
               configuration (``small``: about 55,000 rows; ``published``: about 1.75 million), labels
               received 7 days after their transaction (Spark), vs the same code in one plain Python
               pass (:class:`app.features.StreamFeatures`, same run baseline); parity = every feature
               of every row equal to 1e-9.
2. warm-start - the model learns every ULB row before the last ``--eval`` rows, in event order.
3. scores     - that checkpoint scores every ULB row (mapInPandas), vs a plain predict loop.
4. warm vs cold - prequential (predict, then learn) over the ``--eval`` rows after the warm-start
               point: exact PR-AUC and ROC-AUC of the warm-started and of a fresh model.

The ULB file has no card or terminal ids, so steps 2-4 run without window features. The stack is
not needed (the jobs read files). Last line: key=value pairs.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

import settings
from app import configured
from app.backfill.features import LABEL_DELAY_S
from app.backfill.jobs import run_features, run_scores, run_warm_start
from app.backfill.scores import model_input_columns
from app.backfill.session import build_session
from app.data import ensure_creditcard_csv, iter_rows
from app.data.simulator import CONFIGS, load
from app.features import StreamFeatures
from app.learning import OnlineLearner
from app.learning.evaluation import exact_metrics
from app.records import FEATURE_NAMES


def write_simulator_csv(rows: list[dict], path: Path) -> None:
    """Simulator rows as a CSV the file source reads (``V1..V28`` zero), ids ``sim-<index>``."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["transaction_id", "event_time", *FEATURE_NAMES, "Class", "card_id", "terminal_id"])
        zeros = [0.0] * (len(FEATURE_NAMES) - 1)
        for r in rows:
            w.writerow([f"sim-{r['transaction_index']:09d}", r["event_time"], *zeros, r["Amount"], r["Class"],
                        r["card_id"], r["terminal_id"]])


def plain_features(rows: list[dict]) -> tuple[list[dict], float]:
    """The stream's features of ``rows`` (event-time order) in one plain pass, and its seconds."""
    sf = StreamFeatures(configured.transaction_features(settings))
    started = time.perf_counter()
    out = [x for _, x in sf.run(rows, label_delay=LABEL_DELAY_S)]
    return out, time.perf_counter() - started


def same(expected: list[dict], table: list[dict], names: list[str]) -> bool:
    """Every feature of every row equal to 1e-9 (a feature the stream leaves out is null in ``table``)."""
    if len(expected) != len(table):
        return False
    for e, t in zip(expected, table):
        for n in names:
            want, have = e.get(n), t[n]
            if want is None or have is None:
                if want is not have:
                    return False
            elif abs(want - have) > 1e-9 * max(1.0, abs(want)):
                return False
    return True


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
    ap.add_argument("--simulator", choices=sorted(CONFIGS), default="small", help="the features job's data")
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
        # 1. features + parity, on the simulator (card and terminal ids, labels)
        sim_rows = list(load(CONFIGS[args.simulator], 0).rows())
        write_simulator_csv(sim_rows, work / "simulator.csv")
        feats = run_features(spark, str(work / "simulator.csv"), str(work / "features"))
        expected, plain_s = plain_features(sim_rows)
        names = list(configured.transaction_features(settings).names)
        table = pq.read_table(work / "features", columns=["transaction_id", *names]).to_pylist()
        parity = same(expected, table, names) and [r["transaction_id"] for r in table] == [
            f"sim-{r['transaction_index']:09d}" for r in sim_rows]
        m = len(sim_rows)
        print(f"features:   {feats['rows']} simulator rows ({args.simulator}) in {feats['seconds']:.1f}s = "
              f"{feats['rows_s']:.0f} rows/s (plain Python pass of the same code: {m / plain_s:.0f} rows/s, "
              f"ratio {feats['rows_s'] * plain_s / m:.2f}); parity={parity}")

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
