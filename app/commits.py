"""Commit progress: the consumer group's committed offset of each source partition, as a gauge and a log.

A worker whose input stalls (a batch that is never acknowledged blocks its partition's commits)
still answers ``/metrics``; what shows the stall is a committed offset that stops moving while the
partition's lag grows. Every ``interval_s`` a Faust timer reads the offsets Faust's consumer has
committed (``app.consumer._committed_offset``: the next offset the group will read, per partition,
updated by each commit and at assignment) for the assigned partitions of the topics the agents read
(table changelogs excluded), sets ``fraud_committed_offset{topic,partition}`` and logs one info
line naming the partitions whose offset moved since the last line, with how far
(``committed offsets: transactions[0]=1200 (+200), ...``). Partitions that move to another worker
are dropped from the gauge.

>>> from faust.types import TP
>>> tp = TP("transactions", 0)
>>> progress = CommitProgress(gauge=None)
>>> progress.observe({tp: 1000})
'committed offsets: transactions[0]=1000'
>>> progress.observe({tp: 1000}) is None  # nothing moved: no line
True
>>> progress.observe({tp: 1200})
'committed offsets: transactions[0]=1200 (+200)'
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

from app import metrics

log = logging.getLogger(__name__)


class CommitProgress:
    """Keeps ``gauge`` (topic, partition) equal to the committed offsets it is shown, and says what moved."""

    def __init__(self, gauge: Any = metrics.COMMITTED_OFFSET) -> None:
        self.gauge = gauge
        self.last: dict[tuple[str, int], int] = {}

    def observe(self, committed: Mapping[Any, int | None]) -> str | None:
        """Publish ``committed`` (topic partition -> offset, None before the first commit) and
        forget the partitions not in it; the log line of those that moved, or None."""
        moved, current = [], {}
        for tp, offset in sorted(committed.items(), key=lambda item: (item[0].topic, item[0].partition)):
            if offset is None:
                continue
            key = (tp.topic, tp.partition)
            current[key] = offset
            if self.gauge is not None:
                self.gauge.labels(topic=tp.topic, partition=str(tp.partition)).set(offset)
            before = self.last.get(key)
            if before is None:
                moved.append(f"{tp.topic}[{tp.partition}]={offset}")
            elif offset != before:
                moved.append(f"{tp.topic}[{tp.partition}]={offset} ({offset - before:+d})")
        for topic, partition in set(self.last) - set(current):
            if self.gauge is not None:
                try:
                    self.gauge.remove(topic, str(partition))
                except KeyError:
                    pass
        self.last = current
        return "committed offsets: " + ", ".join(moved) if moved else None


def source_committed(app) -> dict:
    """The committed offset of each assigned partition of the topics the agents read."""
    consumer, topics = app.consumer, set(app.topics.acking_topics)
    return {tp: consumer._committed_offset.get(tp) for tp in consumer.assignment() if tp.topic in topics}


def register(app, interval_s: float) -> CommitProgress:
    """Put the commit-progress timer on ``app`` (see the module's docstring)."""
    progress = CommitProgress()

    @app.timer(interval=interval_s, name="app.commits.report_commit_progress")
    async def report_commit_progress() -> None:
        line = progress.observe(source_committed(app))
        if line is not None:
            log.info("%s", line)

    return progress
