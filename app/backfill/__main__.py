"""``python -m app.backfill <features|scores|warm-start> ...`` (also runs under ``spark-submit``).

    python -m app.backfill features --source kafka --output runs/features
    python -m app.backfill features --source kafka --starting-offsets earliest --publish window-features
    python -m app.backfill features --source history.csv --output runs/history-features
    python -m app.backfill warm-start --source ulb --until-event-time 150000 --output runs/warm.ckpt
    python -m app.backfill scores --source kafka --checkpoint runs/warm.ckpt --output runs/scores
    python -m app.backfill features --master spark://127.0.0.1:7077 --source data.parquet --output out

``--source`` is ``kafka`` (the transactions topic, default), ``ulb`` (the real ULB file) or a CSV /
Parquet path. The master is ``settings.SPARK_MASTER`` (``local[*]``) unless ``--master`` says otherwise.

The window features are the scorer's (``app.features``), as the settings configure them
(``CARD_WINDOW_DAYS``, ``CARD_AMOUNT_RATIOS``, ``TERMINAL_WINDOW_DAYS``, ``TERMINAL_DELAY_S``,
``CARD_PANE_S``, ``TERMINAL_PANE_S``), computed in event-time order (ties by source position;
there is no other order to choose: what the stream computes for a topic written in event-time
order), each label taken as received ``--label-delay-s`` after its transaction. A transaction
without a card id (a terminal id) gets no card (terminal) features: null in the output.
"""
from __future__ import annotations

import argparse
import json
import sys

import settings
from app.backfill.features import LABEL_DELAY_S


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("spark")
    g.add_argument("--master", default=settings.SPARK_MASTER, help="local[*] (default), local[2], spark://host:7077")
    g.add_argument("--driver-memory", default=settings.SPARK_DRIVER_MEMORY)
    s = common.add_argument_group("source")
    s.add_argument("--source", default="kafka", help="kafka (default), ulb, or a CSV / Parquet path")
    s.add_argument("--topic", default=settings.TRANSACTIONS_TOPIC, help="kafka: the transactions topic")
    s.add_argument("--broker", default=settings.KAFKA_BROKER)
    s.add_argument("--registry", default=settings.SCHEMA_REGISTRY_URL)
    s.add_argument("--starting-offsets", default="earliest", help="kafka: earliest, or Spark's JSON offsets")
    s.add_argument("--ending-offsets", default="latest", help="kafka: latest, or Spark's JSON offsets")
    s.add_argument("--starting-timestamp", type=int, default=None, help="kafka: first record timestamp (epoch ms)")
    s.add_argument("--ending-timestamp", type=int, default=None, help="kafka: end record timestamp (epoch ms)")
    s.add_argument("--time-base", type=float, default=0.0, help="files: event_time = time base + Time")
    s.add_argument("--id-prefix", default="tx", help="files: transaction ids <prefix>-<row index>")
    s.add_argument("--limit", type=int, default=None, help="files: only the first N rows")
    w = common.add_argument_group("window features")
    w.add_argument("--label-delay-s", type=float, default=LABEL_DELAY_S,
                   help="a label is taken as received this long after its transaction "
                        f"(default {LABEL_DELAY_S:g}: 7 days); the windows are the settings' (CARD_WINDOW_DAYS, ...)")

    p = argparse.ArgumentParser(prog="python -m app.backfill", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    jobs = p.add_subparsers(dest="job", required=True)
    f = jobs.add_parser("features", parents=[common], help="the model's window features of history",
                        description="Each transaction of the source with the model's window features the scorer "
                                    "would compute for it, in event-time order (ties by source position), labels "
                                    "received --label-delay-s after their transaction; the windows are the "
                                    "settings' (CARD_WINDOW_DAYS, CARD_AMOUNT_RATIOS, TERMINAL_WINDOW_DAYS, "
                                    "TERMINAL_DELAY_S, CARD_PANE_S, TERMINAL_PANE_S). To Parquet (--output, "
                                    "sorted) and/or a topic (--publish, Confluent Avro keyed by transaction id).")
    f.add_argument("--output", help="Parquet folder")
    f.add_argument("--publish", nargs="?", const=settings.BACKFILL_FEATURES_TOPIC, default=None, metavar="TOPIC",
                   help=f"also send them to a topic (default {settings.BACKFILL_FEATURES_TOPIC})")
    sc = jobs.add_parser("scores", parents=[common], help="batch scores with a model checkpoint")
    sc.add_argument("--checkpoint", required=True, help="a checkpoint file (warm-start's output)")
    sc.add_argument("--output", required=True, help="Parquet folder")
    sc.add_argument("--threshold", type=float, default=None)
    ws = jobs.add_parser("warm-start", parents=[common], help="train the model on history, write a checkpoint")
    ws.add_argument("--output", required=True, help="the checkpoint file (give it to the worker as WARM_START_PATH)")
    ws.add_argument("--until-event-time", type=float, default=None, help="learn events before this event time")
    ws.add_argument("--model-kind", default=None, help=f"override MODEL_KIND ({settings.MODEL_KIND})")
    ws.add_argument("--trees", type=int, default=None, help=f"override ARF_TREES ({settings.ARF_TREES})")
    for sub in (sc, ws):
        sub.add_argument("--window-features", action=argparse.BooleanOptionalAction, default=None,
                         help=f"add the window features to the model input (default {settings.WINDOW_FEATURES})")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.job == "features" and not args.output and not args.publish:
        parser.error("features: give --output, --publish, or both")
    from app.backfill.jobs import run_features, run_scores, run_warm_start
    from app.backfill.session import build_session

    source_options = {k: getattr(args, k) for k in ("topic", "starting_offsets", "ending_offsets", "starting_timestamp",
                                                     "ending_timestamp", "time_base", "id_prefix", "limit")}
    common = dict(source_options=source_options, label_delay=args.label_delay_s, broker=args.broker,
                  registry_url=args.registry)
    spark = build_session(args.master, app_name=f"fraud-backfill-{args.job}", driver_memory=args.driver_memory)
    try:
        if args.job == "features":
            result = run_features(spark, args.source, args.output, publish_topic=args.publish, **common)
        elif args.job == "scores":
            result = run_scores(spark, args.source, args.checkpoint, args.output, window_features=args.window_features,
                                threshold=args.threshold, **common)
        else:
            from app import configured
            from app.learning import OnlineLearner

            overrides = {k: v for k, v in (("kind", args.model_kind), ("trees", args.trees)) if v is not None}
            learner = OnlineLearner(configured.model_factory(settings, **overrides))
            result = run_warm_start(spark, args.source, args.output, learner=learner,
                                    window_features=args.window_features, until_event_time=args.until_event_time,
                                    **common)
            result.pop("learner")
    except ValueError as exc:
        print(f"backfill: {exc}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
