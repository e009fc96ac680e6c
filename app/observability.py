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
    """Make Faust's Prometheus monitor (:func:`lean_prometheus_monitor`) the app's monitor,
    exporting into ``registry``.

    Unlike :func:`faust.sensors.prometheus.setup_prometheus_sensors` this adds no web page: the
    worker's own ``/metrics`` page renders ``registry``, which then holds both metric sets.
    """
    from faust.sensors.prometheus import FaustMetrics

    monitor = lean_prometheus_monitor(FaustMetrics.create(registry, prefix))
    app.monitor = monitor
    return monitor


def lean_prometheus_monitor(faust_metrics: Any) -> Any:
    """Faust's :class:`~faust.sensors.prometheus.PrometheusMonitor` on ``faust_metrics``, with the
    same series and values, whose per-message and per-event hooks look each labelled series up once
    (by topic, partition or stream) instead of on every call: Faust calls them for every message,
    and ``labels()`` with the stream label's regular expression cost more than the rest of the hook.

    >>> from faust.sensors.prometheus import FaustMetrics
    >>> from faust.types import TP
    >>> from prometheus_client import CollectorRegistry
    >>> import types
    >>> registry = CollectorRegistry()
    >>> monitor = lean_prometheus_monitor(FaustMetrics.create(registry, "demo"))
    >>> for offset in (7, 8):
    ...     monitor.on_message_in(TP("tx", 0), offset, types.SimpleNamespace(time_in=None))
    >>> registry.get_sample_value("demo_messages_received_per_topic_total", {"topic": "tx"})
    2.0
    >>> registry.get_sample_value("demo_messages_received_per_topics_partition", {"topic": "tx", "partition": "0"})
    8.0
    >>> class Stream:  # what the monitor reads of a Faust stream
    ...     task_owner, shortlabel = "agent", "Stream: tx"
    >>> stream = Stream()
    >>> state = monitor.on_stream_event_in(TP("tx", 0), 8, stream, None)
    >>> monitor.on_stream_event_out(TP("tx", 0), 8, stream, None, state)
    >>> registry.get_sample_value("demo_total_events_per_stream_total", {"stream": "stream.tx.events"}), monitor.events_total
    (1.0, 1)
    """
    import weakref
    from time import monotonic

    from faust.sensors.monitor import Monitor
    from faust.sensors.prometheus import PrometheusMonitor

    class LeanPrometheusMonitor(PrometheusMonitor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._by_topic: dict = {}
            self._by_tp: dict = {}
            self._end_by_tp: dict = {}
            self._by_stream: dict = {}
            self._sent_by_topic: dict = {}

        def on_message_in(self, tp, offset, message) -> None:
            Monitor.on_message_in(self, tp, offset, message)
            m = self._metrics
            m.messages_received.inc()
            m.active_messages.inc()
            received = self._by_topic.get(tp.topic)
            if received is None:
                received = self._by_topic[tp.topic] = m.messages_received_per_topics.labels(topic=tp.topic)
            received.inc()
            position = self._by_tp.get(tp)
            if position is None:
                position = self._by_tp[tp] = m.messages_received_per_topics_partition.labels(
                    topic=tp.topic, partition=tp.partition)
            position.set(offset)

        def on_stream_event_in(self, tp, offset, stream, event):
            # Monitor.on_stream_event_in's bookkeeping, with the stream's and its task's names found
            # by one lookup (Monitor looks both up in weak-keyed dictionaries on every event)
            m = self._metrics
            seen = self._by_stream.get(id(stream))
            if seen is None or seen[0]() is not stream:
                seen = self._by_stream[id(stream)] = (
                    weakref.ref(stream), str(stream), str(stream.task_owner),
                    m.total_events_per_stream.labels(stream=f"stream.{self._stream_label(stream)}.events"))
            _, stream_key, task_key, events = seen
            self.events_total += 1
            self.stream_inbound_time[tp] = monotonic()
            self.events_by_stream[stream_key] += 1
            self.events_by_task[task_key] += 1
            self.events_active += 1
            m.total_events.inc()
            m.total_active_events.inc()
            events.inc()
            return {"time_in": self.time(), "time_out": None, "time_total": None}

        def track_tp_end_offset(self, tp, offset) -> None:
            Monitor.track_tp_end_offset(self, tp, offset)
            end = self._end_by_tp.get(tp)
            if end is None:
                end = self._end_by_tp[tp] = self._metrics.topic_partition_end_offset.labels(
                    topic=tp.topic, partition=tp.partition)
            end.set(offset)

        def on_send_initiated(self, producer, topic, message, keysize, valsize):
            sent = self._sent_by_topic.get(topic)
            if sent is None:
                sent = self._sent_by_topic[topic] = self._metrics.topic_messages_sent.labels(topic=f"topic.{topic}")
            sent.inc()
            return Monitor.on_send_initiated(self, producer, topic, message, keysize, valsize)

    return LeanPrometheusMonitor(metrics=faust_metrics)


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

