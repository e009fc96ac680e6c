"""Warm start: train the stream's model on history, in event order, and write its checkpoint.

Spark builds the ordered training set (labelled transactions, with the window features when the
scorer uses them, sorted by event time then source position); the driver then streams it in that
order (``toLocalIterator``: one partition at a time, never the whole history in memory) through
:meth:`OnlineLearner.learn`, exactly as the scorer would have learned it. The checkpoint
(:meth:`OnlineLearner.save`) is what the worker loads at start when ``WARM_START_PATH`` names it;
its ``meta["warm_start"]`` says what it learned (rows, last event time and transaction id).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Iterable, Iterator

import settings
from app.backfill.features import EVENT_TIME_ORDER
from app.backfill.scores import model_input_columns


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


def training_selection(frame, *, window_features: bool | None = None, until_event_time: float | None = None,
                       order: str = "event-time", **window_kwargs):
    """The labelled transactions with the model's input columns and ``Class``, not yet sorted
    (persisted when it holds window features, so that sorting does not compute them twice).

    Window features are computed over *all* the transactions (labelled or not, as the stream
    does) before the unlabelled ones are dropped; ``until_event_time`` keeps events before it.
    """
    from pyspark.sql import functions as F

    from app.backfill.features import feature_columns
    from app.backfill.features import window_features as add_window_features

    use_windows = settings.WINDOW_FEATURES if window_features is None else window_features
    windows = feature_columns(window_kwargs.get("size"), window_kwargs.get("step")) if use_windows else []
    if use_windows:
        frame = add_window_features(frame, order=order, **window_kwargs)
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
        x = {name: float(row[name]) for name in columns}
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
               order: str = "event-time", **window_kwargs):
    """Train ``learner`` (default: a fresh one of the configured model) on ``frame``; return it and stats."""
    from app.backfill.features import feature_columns
    from app import configured
    from app.learning import OnlineLearner

    use_windows = settings.WINDOW_FEATURES if window_features is None else window_features
    windows = feature_columns(window_kwargs.get("size"), window_kwargs.get("step")) if use_windows else []
    learner = learner or OnlineLearner(configured.model_factory(settings))
    selected = training_selection(frame, window_features=use_windows, until_event_time=until_event_time,
                                  order=order, **window_kwargs)
    try:
        stats = learn_in_order(learner, ordered_rows(selected.orderBy(*EVENT_TIME_ORDER)), model_input_columns(windows))
    finally:
        selected.unpersist()
    learner.meta["warm_start"] = {**asdict(stats), "window_features": use_windows}
    return learner, stats
