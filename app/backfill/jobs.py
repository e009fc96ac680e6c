"""The three jobs end to end (source -> Spark -> output), each returning what it did and how fast.

The CLI (``python -m app.backfill``) and ``benchmarks/backfill.py`` call these.
"""
from __future__ import annotations

import time
from pathlib import Path

from pyspark import StorageLevel

from app.backfill.features import EVENT_TIME_ORDER, LABEL_DELAY_S, transaction_features
from app.backfill.scores import batch_scores
from app.backfill.sinks import publish, write_parquet
from app.backfill.sources import read_source
from app.backfill.warm_start import warm_start


def run_features(spark, source: str, output: str | None, *, publish_topic: str | None = None,
                 source_options: dict | None = None, label_delay: float = LABEL_DELAY_S, features=None,
                 broker: str | None = None, registry_url: str | None = None) -> dict:
    """The model's window features of the history in ``source`` (each transaction with the columns
    of :func:`~app.backfill.features.transaction_features`: ``features``, default the configured
    ones, labels received ``label_delay`` after their transaction), to Parquet (sorted in event-time
    order) and/or a topic."""
    if not output and not publish_topic:
        raise ValueError("give an output folder, a topic to publish to, or both")
    started = time.perf_counter()
    frame = read_source(spark, source, broker=broker, registry_url=registry_url, **(source_options or {}))
    # computed once: sorting samples its input first, which would otherwise run the window pass twice
    computed = transaction_features(frame, features=features, label_delay=label_delay)
    computed = computed.persist(StorageLevel.MEMORY_AND_DISK)
    result = computed.orderBy(*EVENT_TIME_ORDER)
    rows = None
    if output:
        write_parquet(result, output)
        computed.unpersist()
        result = spark.read.parquet(output)
        rows = result.count()
    schema_id = None
    if publish_topic:
        schema_id = publish(result, publish_topic, broker=broker, registry_url=registry_url)
        rows = rows if rows is not None else result.count()
    computed.unpersist()
    seconds = time.perf_counter() - started
    return {"job": "features", "rows": rows, "seconds": seconds, "rows_s": rows / seconds if seconds else 0.0,
            "output": output, "topic": publish_topic, "schema_id": schema_id, "label_delay_s": float(label_delay)}


def run_scores(spark, source: str, checkpoint: str, output: str, *, window_features: bool | None = None,
               threshold: float | None = None, source_options: dict | None = None,
               label_delay: float = LABEL_DELAY_S, broker: str | None = None, registry_url: str | None = None) -> dict:
    """Scores of the history in ``source`` by the checkpoint file, to Parquet."""
    started = time.perf_counter()
    frame = read_source(spark, source, broker=broker, registry_url=registry_url, **(source_options or {}))
    scores = batch_scores(frame, Path(checkpoint).read_bytes(), window_features=window_features, threshold=threshold,
                          label_delay=label_delay)
    write_parquet(scores, output)
    rows = spark.read.parquet(output).count()
    seconds = time.perf_counter() - started
    return {"job": "scores", "rows": rows, "seconds": seconds, "rows_s": rows / seconds if seconds else 0.0,
            "output": output}


def run_warm_start(spark, source: str, output: str, *, learner=None, window_features: bool | None = None,
                   until_event_time: float | None = None, source_options: dict | None = None,
                   label_delay: float = LABEL_DELAY_S, broker: str | None = None,
                   registry_url: str | None = None) -> dict:
    """Train the configured model (or ``learner``) on the history in ``source``; write its checkpoint."""
    started = time.perf_counter()
    frame = read_source(spark, source, broker=broker, registry_url=registry_url, **(source_options or {}))
    learner, stats = warm_start(frame, learner=learner, window_features=window_features,
                                until_event_time=until_event_time, label_delay=label_delay)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    learner.save(output)
    seconds = time.perf_counter() - started
    return {"job": "warm-start", "rows": stats.rows, "frauds": stats.frauds, "seconds": seconds,
            "rows_s": stats.rows / seconds if seconds else 0.0, "output": output, "model_version": learner.version,
            "last_event_time": stats.last_event_time, "learner": learner}
