"""The figures of the report, computed exactly from the run's records (no plotting here)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score


def exact_aucs(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Exact ROC-AUC and PR-AUC (average precision); NaN when only one class is present.

    >>> exact_aucs(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    (0.75, 0.8333333333333333)
    >>> exact_aucs(np.array([0, 0]), np.array([0.1, 0.2]))
    (nan, nan)
    """
    if len(y) == 0 or y.min() == y.max():
        return math.nan, math.nan
    return float(roc_auc_score(y, p)), float(average_precision_score(y, p))


def prequential_auc(labelled: pd.DataFrame, points: int = 60, window: int = 5000) -> pd.DataFrame:
    """ROC-AUC and PR-AUC over event time, at ``points`` evenly spaced positions of the stream.

    ``labelled`` has ``event_time``, ``label`` and ``fraud_probability`` in stream order (each score was
    made before the model learned that event's label: prequential). At each position the cumulative
    figures use every labelled event so far, the rolling ones the last ``window`` events.

    >>> frame = pd.DataFrame({"event_time": range(8), "label": [0, 1, 0, 1, 0, 1, 0, 1],
    ...                       "fraud_probability": [.1, .9, .2, .8, .3, .7, .4, .6]})
    >>> prequential_auc(frame, points=2, window=4)[["events", "roc_auc", "roc_auc_window"]].values.tolist()
    [[4.0, 1.0, 1.0], [8.0, 1.0, 1.0]]
    """
    y = labelled["label"].to_numpy(dtype=int)
    p = labelled["fraud_probability"].to_numpy(dtype=float)
    t = labelled["event_time"].to_numpy(dtype=float)
    n = len(y)
    rows = []
    for end in sorted({int(round(n * (i + 1) / points)) for i in range(points)} - {0}):
        roc, pr = exact_aucs(y[:end], p[:end])
        roc_w, pr_w = exact_aucs(y[max(0, end - window):end], p[max(0, end - window):end])
        rows.append({"events": float(end), "event_time": t[end - 1], "frauds": int(y[:end].sum()),
                     "roc_auc": roc, "pr_auc": pr, "roc_auc_window": roc_w, "pr_auc_window": pr_w})
    return pd.DataFrame(rows, columns=["events", "event_time", "frauds", "roc_auc", "pr_auc", "roc_auc_window",
                                       "pr_auc_window"])


def window_of(times: pd.Series, origin: float, window_s: float) -> pd.Series:
    """The start (seconds from ``origin``) of the ``window_s`` window each time falls in.

    >>> window_of(pd.Series([100.0, 104.9, 105.0]), 100.0, 5.0).tolist()
    [0.0, 0.0, 5.0]
    """
    return np.floor((times.astype(float) - origin) / window_s) * window_s


def latency_by_window(scores: pd.DataFrame, origin: float, window_s: float,
                      quantiles: tuple[float, ...] = (0.5, 0.95, 0.99)) -> pd.DataFrame:
    """Percentiles of ``processing_time - event_time`` per event-time window (index: window start).

    >>> frame = pd.DataFrame({"event_time": [0.0, 1.0, 10.0], "processing_time": [0.5, 1.5, 12.0]})
    >>> latency_by_window(frame, 0.0, 10.0, (0.5,)).to_dict("index")
    {0.0: {'p50': 0.5, 'events': 2}, 10.0: {'p50': 2.0, 'events': 1}}
    """
    latency = scores["processing_time"].astype(float) - scores["event_time"].astype(float)
    groups = latency.groupby(window_of(scores["event_time"], origin, window_s))
    out = pd.DataFrame({f"p{round(q * 100):d}": groups.quantile(q) for q in quantiles})
    out["events"] = groups.size()
    out.index.name = "window_start_s"
    return out


def per_window_counts(times: pd.Series, origin: float, window_s: float, span_s: float) -> pd.Series:
    """How many of ``times`` fall in each window from ``origin`` to ``origin + span_s`` (zeros included).

    >>> per_window_counts(pd.Series([0.5, 0.7, 2.1]), 0.0, 1.0, 3.0).tolist()
    [2, 0, 1]
    """
    starts = np.arange(0.0, max(span_s, window_s), window_s)
    counts = window_of(times, origin, window_s).value_counts() if len(times) else pd.Series(dtype=int)
    return pd.Series([int(counts.get(s, 0)) for s in starts], index=starts, name="count")


def overall_latency(scores: pd.DataFrame) -> dict[str, float]:
    """p50/p95/p99/max of ``processing_time - event_time`` over the whole run (seconds).

    >>> overall_latency(pd.DataFrame({"event_time": [0.0] * 4, "processing_time": [1.0, 2.0, 3.0, 4.0]}))["max"]
    4.0
    """
    latency = (scores["processing_time"].astype(float) - scores["event_time"].astype(float)).to_numpy()
    if len(latency) == 0:
        return {k: math.nan for k in ("p50", "p95", "p99", "max")}
    p50, p95, p99 = np.percentile(latency, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "max": float(latency.max())}
