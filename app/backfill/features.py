"""The stream's hopping-window features, computed in batch by Spark.

The arithmetic is not re-implemented: the transactions are grouped by window key (the card id, or
the global key for a transaction without one) and each group runs the stream's own
:class:`app.windows.WindowFeatures` over its events in order (``applyInPandas``). A key's features
depend only on its own earlier events and on how far event time has advanced, so the groups are
independent and the result equals one sequential pass over all events in the same order:

* ``order="event-time"`` (default): events by event time, ties by source position. Event time then
  never goes back, so no window is ever expired when read: exactly what the stream computes for a
  topic written in event-time order (the replay producer's).
* ``order="arrival"``: events in source order (Kafka record timestamp, partition, offset; a file's
  row order), late events included. The stream's watermark is the greatest event time seen so far
  *over all keys*; it is computed as a running maximum over the whole history (a window without
  partitions: one task) and handed to each key's pass, so late events skip expired windows exactly
  as in the stream.

>>> feature_columns(60, 20)[:2], feature_columns(60, 20)[-1], len(feature_columns(60, 20))
(['win0_count', 'win0_amount_sum'], 'seconds_since_previous', 13)
"""
from __future__ import annotations

import settings
from app import configured
from app.windows.features import feature_names

ORDERS = ("event-time", "arrival")
ARRIVAL_ORDER = ["source_timestamp", "source_partition", "source_offset"]
EVENT_TIME_ORDER = ["event_time", *ARRIVAL_ORDER]


def window_params(size=None, step=None, expires=None, gap_cap=None, global_key=None) -> dict:
    """The window parameters, defaulting to the ``WINDOW_*`` settings the worker uses
    (:func:`app.configured.window_params`)."""
    given = {"size": size, "step": step, "expires": expires, "gap_cap": gap_cap, "global_key": global_key}
    params = {name: default if given[name] is None else given[name]
              for name, default in configured.window_params(settings).items()}
    return {name: value if name == "global_key" else float(value) for name, value in params.items()}


def feature_columns(size=None, step=None) -> list[str]:
    """The feature column names for windows of ``size`` seconds every ``step`` seconds."""
    params = window_params(size, step)
    return feature_names(int(params["size"] // params["step"]))


def _features_of_key(params: dict, order: list[str], arrival: bool, columns: list[str]):
    """The pandas function run per window key (picklable: it imports inside)."""

    def run(pdf):
        import pandas as pd

        from app.windows.features import WindowFeatures

        pdf = pdf.sort_values(order, kind="mergesort").reset_index(drop=True)
        wf = WindowFeatures(**params)
        cards = pdf["card_id"].where(pdf["card_id"].notna(), None).tolist()
        times = pdf["event_time"].astype(float).tolist()
        amounts = pdf["Amount"].astype(float).tolist()
        marks = pdf["_watermark"].tolist() if arrival else None
        rows = []
        for i, (card, t, amount) in enumerate(zip(cards, times, amounts)):
            if marks is not None and marks[i] > wf.watermark:
                wf.watermark = marks[i]  # how far the whole stream had advanced when this event came
            rows.append(wf.update(card, t, amount))
        feats = pd.DataFrame.from_records(rows, columns=columns) if rows else pd.DataFrame(columns=columns)
        out = pd.concat([pdf.drop(columns=[c for c in ("_window_key", "_watermark") if c in pdf]), feats], axis=1)
        return out

    return run


def window_features(frame, *, order: str = "event-time", size=None, step=None, expires=None, gap_cap=None,
                    global_key=None):
    """``frame`` (transactions, see :mod:`app.backfill.sources`) with the window feature columns added."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    params = window_params(size, step, expires, gap_cap, global_key)
    columns = feature_names(int(params["size"] // params["step"]))
    arrival = order == "arrival"
    keyed = frame.withColumn(
        "_window_key", F.coalesce(F.when(F.col("card_id") != "", F.col("card_id")), F.lit(params["global_key"])))
    if arrival:
        so_far = Window.orderBy(*ARRIVAL_ORDER).rowsBetween(Window.unboundedPreceding, Window.currentRow)
        keyed = keyed.withColumn("_watermark", F.max("event_time").over(so_far))
    schema = T.StructType(list(frame.schema.fields) + [T.StructField(c, T.DoubleType(), False) for c in columns])
    run = _features_of_key(params, ARRIVAL_ORDER if arrival else EVENT_TIME_ORDER, arrival, columns)
    return keyed.groupBy("_window_key").applyInPandas(run, schema=schema)
