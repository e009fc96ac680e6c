"""Warm start: train the stream's model on history, in event order, and write its checkpoint.

Spark builds the ordered training set (labelled transactions, with the model's window features
when the scorer uses them: :func:`app.backfill.features.transaction_features`, sorted by event
time then source position); the driver then streams it in that
order (``toLocalIterator``: one partition at a time, never the whole history in memory) through
:meth:`OnlineLearner.learn`, exactly as the scorer would have learned it. The checkpoint
(:meth:`OnlineLearner.save`) is what the worker loads at start when ``WARM_START_PATH`` names it;
its ``meta["warm_start"]`` says what it learned (rows, last event time and transaction id) and
``meta["model_input"]`` what its input is (:func:`model_input_meta`: the raw fields, the window
feature names and their parameters), so that the worker serves it the same features.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Iterable, Iterator

import settings
from app import configured
from app.backfill.features import EVENT_TIME_ORDER, LABEL_DELAY_S
from app.backfill.scores import model_input_columns, model_x


@dataclass
class WarmStartStats:
    rows: int = 0
    frauds: int = 0
    first_event_time: float | None = None
    last_event_time: float | None = None
    last_transaction_id: str | None = None
    train_s: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.train_s if self.train_s > 0 else 0.0


def training_set(frame, **kwargs):
    """The labelled transactions in learning order, with the model's input columns and ``Class``
    (the arguments are :func:`training_selection`'s)."""
    return training_selection(frame, **kwargs).orderBy(*EVENT_TIME_ORDER)


def window_columns(use_windows: bool) -> list[str]:
    """The window feature columns of the model input (none when off)."""
    return list(configured.transaction_features(settings).names) if use_windows else []


def model_input_meta(use_windows: bool, label_delay: float = LABEL_DELAY_S) -> dict:
    """What a model trained here takes as input: ``raw`` (``settings.MODEL_FEATURES``),
    ``window_features`` (the names, in order; empty when off), ``window_params`` (the
    :class:`~app.features.TransactionFeatures` arguments, ``None`` when off) and the
    ``label_delay_s`` its terminal windows assumed.

    >>> model_input_meta(False)["window_features"], model_input_meta(True)["window_features"][0]
    ([], 'CUSTOMER_ID_NB_TX_1DAY_WINDOW')
    """
    tf = configured.transaction_features(settings)
    return {"raw": list(settings.MODEL_FEATURES), "window_features": window_columns(use_windows),
            "window_params": tf.params() if use_windows else None,
            "label_delay_s": float(label_delay) if use_windows else None}


def training_selection(frame, *, window_features: bool | None = None, until_event_time: float | None = None,
                       label_delay: float = LABEL_DELAY_S):
    """The labelled transactions with the model's input columns and ``Class``, not yet sorted
    (persisted when it holds window features, so that sorting does not compute them twice).

    Window features are computed over *all* the transactions (labelled or not, as the stream
    does) before the unlabelled ones are dropped, in event-time order, labels received
    ``label_delay`` after their transaction; ``until_event_time`` keeps events before it.
    """
    from pyspark.sql import functions as F

    from app.backfill.features import transaction_features

    use_windows = settings.WINDOW_FEATURES if window_features is None else window_features
    windows = window_columns(use_windows)
    if use_windows:
        frame = transaction_features(frame, label_delay=label_delay)
    if until_event_time is not None:
        frame = frame.where(F.col("event_time") < float(until_event_time))
    columns = ["transaction_id", *EVENT_TIME_ORDER, *model_input_columns(windows), "Class"]
    selected = frame.where(F.col("Class").isNotNull()).select(*dict.fromkeys(columns))
    if use_windows:  # sorting samples its input first: keep the window pass from running twice
        from pyspark import StorageLevel

        selected = selected.persist(StorageLevel.MEMORY_AND_DISK)
    return selected


def learn_in_order(learner, rows: Iterable, columns: list[str], stats: WarmStartStats | None = None) -> WarmStartStats:
    """Feed ``rows`` (Spark Rows or dicts with ``columns``, ``Class``, ``event_time``) to ``learner``."""
    stats = stats or WarmStartStats()
    started = time.perf_counter()
    for row in rows:
        x = model_x(row, columns)
        y = int(row["Class"])
        learner.learn(x, y)
        stats.rows += 1
        stats.frauds += y
        if stats.first_event_time is None:
            stats.first_event_time = float(row["event_time"])
        stats.last_event_time = float(row["event_time"])
        stats.last_transaction_id = row["transaction_id"]
    stats.train_s += time.perf_counter() - started
    return stats


def ordered_rows(training) -> Iterator:
    """The rows of a sorted DataFrame, in order, one partition at a time."""
    return training.toLocalIterator(prefetchPartitions=True)


def warm_start(frame, *, learner=None, window_features: bool | None = None, until_event_time: float | None = None,
               label_delay: float = LABEL_DELAY_S):
    """Train ``learner`` (default: a fresh one of the configured model) on ``frame``; return it and stats."""
    from app.learning import OnlineLearner

    use_windows = settings.WINDOW_FEATURES if window_features is None else window_features
    learner = learner or OnlineLearner(configured.model_factory(settings))
    selected = training_selection(frame, window_features=use_windows, until_event_time=until_event_time,
                                  label_delay=label_delay)
    try:
        stats = learn_in_order(learner, ordered_rows(selected.orderBy(*EVENT_TIME_ORDER)),
                               model_input_columns(window_columns(use_windows)))
    finally:
        selected.unpersist()
    learner.meta["warm_start"] = {**asdict(stats), "window_features": use_windows}
    learner.meta["model_input"] = model_input_meta(use_windows, label_delay)
    return learner, stats
