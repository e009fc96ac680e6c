"""Batch scores: a model checkpoint scores history in parallel (``mapInPandas``), without learning.

Each Python worker restores the learner once from the checkpoint's bytes (a broadcast variable)
and scores its rows with :meth:`OnlineLearner.predict_proba` on the same input the worker's scorer
builds: ``V1..V28`` and ``Amount``, plus the window features when ``window_features`` is on
(``settings.WINDOW_FEATURES``, the scorer's switch). The columns follow the ``Score`` record:
``fraud_probability``, ``decision`` (``>= threshold``), ``threshold``, ``model_version``,
``events_learned`` and ``label`` (the transaction's ``Class``), with ``card_id`` and the source
position kept for joins.
"""
from __future__ import annotations

import settings
from app.records import FEATURE_NAMES

SCORE_COLUMNS = ["transaction_id", "event_time", "card_id", "fraud_probability", "decision", "threshold",
                 "model_version", "events_learned", "label", "source_partition", "source_offset"]


def model_input_columns(window_columns: list[str] | None = None) -> list[str]:
    """The columns of the model's ``x``: the transaction's features, then any window features.

    >>> model_input_columns(["win0_count"])[-2:]
    ['Amount', 'win0_count']
    """
    return [*FEATURE_NAMES, *(window_columns or [])]


def _score_batches(checkpoint, columns: list[str], threshold: float):
    def run(batches):
        import pandas as pd

        from app.learning import OnlineLearner

        learner = OnlineLearner.from_checkpoint(checkpoint.value)
        for pdf in batches:
            xs = pdf[columns].astype(float).to_dict("records")
            p = [learner.predict_proba(x) for x in xs]
            yield pd.DataFrame({
                "transaction_id": pdf["transaction_id"], "event_time": pdf["event_time"], "card_id": pdf["card_id"],
                "fraud_probability": p, "decision": [v >= threshold for v in p], "threshold": threshold,
                "model_version": learner.version, "events_learned": learner.events_learned,
                "label": pdf["Class"], "source_partition": pdf["source_partition"],
                "source_offset": pdf["source_offset"],
            })

    return run


def batch_scores(frame, checkpoint: bytes, *, window_features: bool | None = None, threshold: float | None = None,
                 order: str = "event-time", **window_kwargs):
    """Scores of every transaction in ``frame`` by the model in ``checkpoint`` (see the module doc)."""
    from pyspark.sql import types as T

    from app.backfill.features import feature_columns
    from app.backfill.features import window_features as add_window_features
    from app.learning import OnlineLearner

    OnlineLearner.from_checkpoint(checkpoint)  # refuse a bad file on the driver, before any task runs
    use_windows = settings.WINDOW_FEATURES if window_features is None else window_features
    threshold = settings.DECISION_THRESHOLD if threshold is None else float(threshold)
    windows = feature_columns(window_kwargs.get("size"), window_kwargs.get("step")) if use_windows else []
    if use_windows:
        frame = add_window_features(frame, order=order, **window_kwargs)
    schema = T.StructType([
        T.StructField("transaction_id", T.StringType()), T.StructField("event_time", T.DoubleType()),
        T.StructField("card_id", T.StringType()), T.StructField("fraud_probability", T.DoubleType()),
        T.StructField("decision", T.BooleanType()), T.StructField("threshold", T.DoubleType()),
        T.StructField("model_version", T.StringType()), T.StructField("events_learned", T.LongType()),
        T.StructField("label", T.IntegerType()), T.StructField("source_partition", T.IntegerType()),
        T.StructField("source_offset", T.LongType()),
    ])
    shared = frame.sparkSession.sparkContext.broadcast(checkpoint)
    return frame.mapInPandas(_score_batches(shared, model_input_columns(windows), threshold), schema=schema)
