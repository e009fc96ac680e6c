"""Batch scores: a model checkpoint scores history in parallel (``mapInPandas``), without learning.

Each Python worker restores the learner once from the checkpoint's bytes (a broadcast variable)
and scores its rows with :meth:`OnlineLearner.predict_proba` on the same input the worker's scorer
builds: the fields ``settings.MODEL_FEATURES``, plus the model's window features when
``window_features`` is on (``settings.WINDOW_FEATURES``, the scorer's switch;
:func:`app.backfill.features.transaction_features`), a feature left out where it is null (as the
stream leaves out those of a transaction without ids). The columns follow the ``Score`` record:
``fraud_probability``, ``decision`` (``>= threshold``), ``threshold``, ``model_version``,
``events_learned`` and ``label`` (the transaction's ``Class``), with ``card_id`` and the source
position kept for joins.
"""
from __future__ import annotations

import math

import settings

SCORE_COLUMNS = ["transaction_id", "event_time", "card_id", "fraud_probability", "decision", "threshold",
                 "model_version", "events_learned", "label", "source_partition", "source_offset"]


def model_input_columns(window_columns: list[str] | None = None) -> list[str]:
    """The columns of the model's ``x``: the transaction's features (``settings.MODEL_FEATURES``),
    then any window features.

    >>> model_input_columns(["TX_DURING_NIGHT"])[-2:]
    ['Amount', 'TX_DURING_NIGHT']
    """
    return [*settings.MODEL_FEATURES, *(window_columns or [])]


def model_x(row, columns: list[str]) -> dict[str, float]:
    """The model's ``x`` from a row (a Spark Row, a dict or a pandas record): ``columns`` as floats,
    leaving out those that are null or NaN (the stream leaves them out).

    >>> model_x({"Amount": 3, "TX_DURING_NIGHT": None, "CUSTOMER_ID_NB_TX_1DAY_WINDOW": float("nan")},
    ...         ["Amount", "TX_DURING_NIGHT", "CUSTOMER_ID_NB_TX_1DAY_WINDOW"])
    {'Amount': 3.0}
    """
    x = {}
    for name in columns:
        value = row[name]
        if value is not None and not math.isnan(value):
            x[name] = float(value)
    return x


def _score_batches(checkpoint, columns: list[str], threshold: float):
    def run(batches):
        import pandas as pd

        from app.learning import OnlineLearner

        learner = OnlineLearner.from_checkpoint(checkpoint.value)
        for pdf in batches:
            xs = pdf[columns].astype(float).to_dict("records")
            p = [learner.predict_proba(model_x(x, columns)) for x in xs]
            yield pd.DataFrame({
                "transaction_id": pdf["transaction_id"], "event_time": pdf["event_time"], "card_id": pdf["card_id"],
                "fraud_probability": p, "decision": [v >= threshold for v in p], "threshold": threshold,
                "model_version": learner.version, "events_learned": learner.events_learned,
                "label": pdf["Class"], "source_partition": pdf["source_partition"],
                "source_offset": pdf["source_offset"],
            })

    return run


def batch_scores(frame, checkpoint: bytes, *, window_features: bool | None = None, threshold: float | None = None,
                 label_delay: float | None = None):
    """Scores of every transaction in ``frame`` by the model in ``checkpoint`` (see the module doc);
    window features as :func:`app.backfill.warm_start.training_selection` computes them."""
    from pyspark.sql import types as T

    from app.backfill.features import LABEL_DELAY_S, transaction_features
    from app.backfill.warm_start import window_columns
    from app.learning import OnlineLearner

    OnlineLearner.from_checkpoint(checkpoint)  # refuse a bad file on the driver, before any task runs
    use_windows = settings.WINDOW_FEATURES if window_features is None else window_features
    threshold = settings.DECISION_THRESHOLD if threshold is None else float(threshold)
    windows = window_columns(use_windows)
    if use_windows:
        frame = transaction_features(frame, label_delay=LABEL_DELAY_S if label_delay is None else label_delay)
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
