"""Consumer lag: the arithmetic and the gauge, with a stand-in for Faust's consumer."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from prometheus_client import CollectorRegistry, Gauge

from app.observability import ConsumerLagReporter, lags


class TP(SimpleNamespace):
    def __hash__(self):
        return hash((self.topic, self.partition))


class FakeConsumer:
    def __init__(self, assigned, ends, committed, earliest):
        self.assigned, self.ends, self._committed_offset, self.earliest = assigned, ends, committed, earliest

    def assignment(self):
        return set(self.assigned)

    async def highwaters(self, *tps):
        return {tp: self.ends[tp] for tp in tps}

    async def earliest_offsets(self, *tps):
        return {tp: self.earliest[tp] for tp in tps}


def reporter_for(consumer):
    registry = CollectorRegistry()
    gauge = Gauge("lag", "lag", ["topic", "partition"], registry=registry)
    app = SimpleNamespace(consumer=consumer, topics=SimpleNamespace(acking_topics={"tx", "labels"}))
    return ConsumerLagReporter(app, gauge), registry


def test_lag_is_end_minus_committed_or_minus_earliest_before_any_commit():
    assert lags({"a": 100, "b": 50}, {"a": 90, "b": None}, {"b": 20}) == {"a": 10, "b": 30}


def test_gauge_follows_the_assignment_and_skips_changelogs():
    tx0, tx1, log0 = TP(topic="tx", partition=0), TP(topic="tx", partition=1), TP(topic="app-table-changelog", partition=0)
    consumer = FakeConsumer([tx0, tx1, log0], {tx0: 100, tx1: 40, log0: 7}, {tx0: 95}, {tx1: 0})
    reporter, registry = reporter_for(consumer)
    assert asyncio.run(reporter.refresh()) == {tx0: 5, tx1: 40}
    assert registry.get_sample_value("lag", {"topic": "tx", "partition": "0"}) == 5
    assert registry.get_sample_value("lag", {"topic": "tx", "partition": "1"}) == 40
    assert registry.get_sample_value("lag", {"topic": "app-table-changelog", "partition": "0"}) is None

    consumer.assigned = [tx0]  # partition 1 went to another worker after a rebalance
    consumer._committed_offset[tx0] = 100
    asyncio.run(reporter.refresh())
    assert registry.get_sample_value("lag", {"topic": "tx", "partition": "0"}) == 0
    assert registry.get_sample_value("lag", {"topic": "tx", "partition": "1"}) is None
