"""Commit progress: the committed offset of each source partition as a gauge, and what moved as a log line."""
from __future__ import annotations

from faust.types import TP
from prometheus_client import CollectorRegistry, Gauge

from app.commits import CommitProgress


def gauge_values(registry) -> dict:
    return {(s.labels["topic"], s.labels["partition"]): s.value
            for family in registry.collect() for s in family.samples}


def test_the_gauge_follows_the_assigned_partitions_and_the_line_names_what_moved():
    registry = CollectorRegistry()
    progress = CommitProgress(Gauge("committed", "test", ["topic", "partition"], registry=registry))
    a, b = TP("transactions", 0), TP("transactions", 1)

    assert progress.observe({a: 10, b: None}) == "committed offsets: transactions[0]=10"  # b: nothing committed yet
    assert gauge_values(registry) == {("transactions", "0"): 10.0}
    assert progress.observe({a: 10, b: 4}) == "committed offsets: transactions[1]=4"
    assert progress.observe({a: 10, b: 4}) is None  # a stall: no line
    assert progress.observe({a: 25}) == "committed offsets: transactions[0]=25 (+15)"  # b went to another worker
    assert gauge_values(registry) == {("transactions", "0"): 25.0}
