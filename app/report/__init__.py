"""The run report: plots and a Markdown summary of one run's outputs.

    python -m app.report --scores-topic scores --labels-topic labels \\
        --anomalies-topic anomalies --drift-alerts-topic drift-alerts --out runs/report
    python -m app.report --parquet runs/backfill --out runs/report

It reads the scores (with their labels, or joined to the ``labels`` topic by transaction id), the
anomalies and the drift alerts, from Kafka topics or from Parquet, and writes to ``--out``:

* ``prequential_auc.png``: exact ROC-AUC and PR-AUC (scikit-learn) over event time, cumulative
  and over a rolling window of labelled events, with the drift alerts marked;
* ``latency.png``: processing time minus event time, p50/p95/p99 per time window;
* ``anomalies.png``: anomalies per time window, with the drift alerts marked;
* ``timeline.png``: the run on one page (scores per window, fraud rate, alerts);
* ``summary.md``: the figures behind the plots.
"""
from app.report.frames import RunFrames
from app.report.measures import latency_by_window, per_window_counts, prequential_auc
from app.report.build import write_report

__all__ = ["RunFrames", "latency_by_window", "per_window_counts", "prequential_auc", "write_report"]
