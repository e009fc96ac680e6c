"""What the worker tells Prometheus beyond its agents' own metrics.

* ``fraud_consumer_lag{topic, partition}``: for every partition this worker consumes (the agents'
  source topics, not table changelogs), the messages between the group's committed offset and the
  end of the partition, refreshed every ``settings.CONSUMER_LAG_INTERVAL_S`` by a Faust timer.
  Partitions that move to another worker after a rebalance are dropped from the gauge.
* Faust's own sensor (:mod:`faust.sensors.prometheus`) registered on the same registry with the
  prefix ``fraud_faust`` (``settings.FAUST_SENSOR``), so one ``/metrics`` page carries both.

:func:`register` wires both into an app; ``app/worker.py`` calls it once.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

import settings
from app import metrics

log = logging.getLogger(__name__)

FAUST_METRICS_PREFIX = "fraud_faust"


def partition_lag(end_offset: int, committed: int | None, earliest: int = 0) -> int:
    """Messages not yet processed in one partition.

    ``end_offset`` is the offset the next produced message will get, ``committed`` the next offset
    the group will read (None when the group has committed nothing yet: then everything from
    ``earliest`` on is behind).

    >>> partition_lag(1000, 990)
    10
    >>> partition_lag(1000, None)
    1000
    >>> partition_lag(1000, None, earliest=400)
    600
    >>> partition_lag(5, 7)   # a committed offset past a truncated end is not negative lag
    0
    """
    start = earliest if committed is None else committed
    return max(0, int(end_offset) - int(start))


def lags(end_offsets: Mapping[Any, int], committed: Mapping[Any, int | None],
         earliest: Mapping[Any, int] | None = None) -> dict[Any, int]:
    """The lag of every partition in ``end_offsets``.

    >>> lags({"a": 10, "b": 7}, {"a": 4}, {"b": 2})
    {'a': 6, 'b': 5}
    """
    earliest = earliest or {}
    return {tp: partition_lag(end, committed.get(tp), earliest.get(tp, 0)) for tp, end in end_offsets.items()}


class ConsumerLagReporter:
    """Keeps ``fraud_consumer_lag`` equal to the lag of the partitions assigned to one app."""

    def __init__(self, app: Any, gauge: Any = metrics.CONSUMER_LAG) -> None:
        self.app = app
        self.gauge = gauge
        self._reported: set[tuple[str, str]] = set()

    def source_partitions(self) -> list:
        """The assigned partitions of the topics the agents read (changelogs excluded)."""
        consumer = self.app.consumer
        topics = set(self.app.topics.acking_topics)
        return sorted((tp for tp in consumer.assignment() if tp.topic in topics),
                      key=lambda tp: (tp.topic, tp.partition))

    async def refresh(self) -> dict:
        """Ask the broker for the end offsets and publish the lag of each partition."""
        tps = self.source_partitions()
        current: dict = {}
        if tps:
            consumer = self.app.consumer
            end_offsets = await consumer.highwaters(*tps)
            committed = {tp: consumer._committed_offset.get(tp) for tp in tps}
            missing = [tp for tp in tps if committed[tp] is None]
            earliest = await consumer.earliest_offsets(*missing) if missing else {}
            current = lags({tp: end_offsets[tp] for tp in tps if tp in end_offsets}, committed, earliest)
        self.publish(current)
        return current

    def publish(self, current: Mapping[Any, int]) -> None:
        """Set the gauge for ``current`` and drop the partitions that are no longer ours."""
        seen = set()
        for tp, lag in current.items():
            key = (tp.topic, str(tp.partition))
            seen.add(key)
            self.gauge.labels(topic=key[0], partition=key[1]).set(lag)
        for key in self._reported - seen:
            try:
                self.gauge.remove(*key)
            except KeyError:
                pass
        self._reported = seen


def install_faust_sensor(app: Any, registry: Any = metrics.REGISTRY, prefix: str = FAUST_METRICS_PREFIX) -> Any:
    """Make Faust's Prometheus monitor the app's monitor, exporting into ``registry``.

    Unlike :func:`faust.sensors.prometheus.setup_prometheus_sensors` this adds no web page: the
    worker's own ``/metrics`` page renders ``registry``, which then holds both metric sets.
    """
    from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor

    monitor = PrometheusMonitor(metrics=FaustMetrics.create(registry, prefix))
    app.monitor = monitor
    return monitor


def register(app: Any, interval_s: float | None = None, faust_sensor: bool | None = None) -> ConsumerLagReporter:
    """Wire the consumer-lag timer (and, if enabled, Faust's sensor) into ``app``."""
    interval_s = settings.CONSUMER_LAG_INTERVAL_S if interval_s is None else interval_s
    faust_sensor = settings.FAUST_SENSOR if faust_sensor is None else faust_sensor
    if faust_sensor:
        install_faust_sensor(app)
    reporter = ConsumerLagReporter(app)

    @app.timer(interval=interval_s, name="consumer_lag")
    async def refresh_consumer_lag() -> None:
        try:
            await reporter.refresh()
        except Exception as exc:  # a broker hiccup must not stop the worker; try again next time
            log.warning("consumer lag not refreshed: %r", exc)

    return reporter

