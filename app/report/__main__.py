"""``python -m app.report``: plots and a summary of one run, from Kafka topics or Parquet."""
from __future__ import annotations

import argparse
import sys

import settings


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.report", description=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--scores-topic", help="read the run from Kafka: the scores topic")
    src.add_argument("--parquet", help="read the run from a folder with scores(.parquet), labels, anomalies, drift_alerts")
    p.add_argument("--labels-topic", default=None, help="join late labels from this topic")
    p.add_argument("--anomalies-topic", default=None)
    p.add_argument("--drift-alerts-topic", default=None)
    p.add_argument("--broker", default=settings.KAFKA_BROKER)
    p.add_argument("--registry", default=settings.SCHEMA_REGISTRY_URL)
    p.add_argument("--out", required=True, help="folder for the PNGs and summary.md")
    p.add_argument("--window-s", type=float, default=settings.REPORT_WINDOW_S or None,
                   help="event-time window in seconds (default: about 40 windows over the run)")
    p.add_argument("--auc-window", type=int, default=settings.REPORT_AUC_WINDOW,
                   help="labelled events in the rolling AUC window")
    p.add_argument("--title", default="Run report")
    args = p.parse_args(argv)

    from app.report.build import write_report
    from app.report.frames import from_parquet, from_topics

    if args.parquet:
        run = from_parquet(args.parquet)
    else:
        run = from_topics(args.broker, args.registry, args.scores_topic, args.labels_topic, args.anomalies_topic,
                          args.drift_alerts_topic)
    try:
        figures = write_report(run, args.out, window_s=args.window_s, auc_window=args.auc_window, title=args.title)
    except ValueError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 1
    print(f"report: {figures['scored']} scores, {figures['labelled']} labelled, ROC-AUC {figures['roc_auc']:.3f}, "
          f"PR-AUC {figures['pr_auc']:.3f}, {figures['anomalies']} anomalies, {figures['drift_alerts']} drift alerts "
          f"-> {args.out}/summary.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
