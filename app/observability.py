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
    monitor = lean_prometheus_monitor(registry, prefix)
    app.monitor = monitor
    return monitor


def lean_prometheus_monitor(registry: Any, prefix: str, pending_max: int = 1024) -> Any:
    """Faust's :class:`~faust.sensors.prometheus.PrometheusMonitor` with its series on ``registry``
    (named ``prefix``\_...), the same series and values, whose per-message and per-event hooks touch
    no Prometheus series.

    Faust calls them for every message and event; the series behind them (messages and events in,
    active, per topic, per stream; the read and end offset of each partition) are counts and
    positions that Faust's own :class:`~faust.sensors.monitor.Monitor` bookkeeping already keeps in
    plain attributes. So the hooks do that bookkeeping only, and the series are brought up to it when
    ``registry`` is collected (a scrape of ``/metrics``): a collector registered on it ahead of the
    series (the registry collects in the order of registration) calls :meth:`sync` first. The events'
    processing times are kept until then (at most ``pending_max``: beyond, they go to their histogram
    at once), then observed in one go.

    >>> from faust.types import TP
    >>> from prometheus_client import CollectorRegistry
    >>> import types
    >>> registry = CollectorRegistry()
    >>> monitor = lean_prometheus_monitor(registry, "demo")
    >>> for offset in (7, 8):
    ...     monitor.on_message_in(TP("tx", 0), offset, types.SimpleNamespace(time_in=None))
    >>> registry.get_sample_value("demo_messages_received_per_topic_total", {"topic": "tx"})
    2.0
    >>> registry.get_sample_value("demo_messages_received_per_topics_partition", {"topic": "tx", "partition": "0"})
    8.0
    >>> monitor.on_message_out(TP("tx", 0), 7, types.SimpleNamespace(time_in=None))
    >>> registry.get_sample_value("demo_active_messages"), registry.get_sample_value("demo_messages_received_total")
    (1.0, 2.0)
    >>> class Stream:  # what the monitor reads of a Faust stream
    ...     task_owner, shortlabel = "agent", "Stream: tx"
    >>> stream = Stream()
    >>> state = monitor.on_stream_event_in(TP("tx", 0), 8, stream, None)
    >>> monitor.on_stream_event_out(TP("tx", 0), 8, stream, None, state)
    >>> registry.get_sample_value("demo_total_events_per_stream_total", {"stream": "stream.tx.events"}), monitor.events_total
    (1.0, 1)
    >>> registry.get_sample_value("demo_events_runtime_ms_count"), registry.get_sample_value("demo_total_active_events")
    (1.0, 0.0)
    """
    import weakref
    from time import monotonic

    from faust.sensors.monitor import Monitor
    from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor

    class LeanPrometheusMonitor(PrometheusMonitor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._by_stream: dict = {}  # id(stream) -> (weak ref, str(stream), str(task))
            self._label_of: dict = {}  # str(stream) -> its series' label (its events: Monitor.events_by_stream)
            self._runtimes_ms: list[float] = []  # events' processing times not yet in their histogram
            self._synced: dict = {}  # a counter series -> the count it was brought up to
            self._sent_by_topic: dict = {}

        def on_message_in(self, tp, offset, message) -> None:
            # Monitor.on_message_in: the counts and the partition's read offset behind the series
            self.messages_received_total += 1
            self.messages_active += 1
            self.messages_received_by_topic[tp.topic] += 1
            self.tp_read_offsets[tp] = offset
            message.time_in = self.time()

        def on_stream_event_in(self, tp, offset, stream, event):
            # Monitor.on_stream_event_in's bookkeeping, with the stream's and its task's names found
            # by one lookup (Monitor looks both up in weak-keyed dictionaries on every event)
            seen = self._by_stream.get(id(stream))
            if seen is None or seen[0]() is not stream:
                seen = self._by_stream[id(stream)] = (weakref.ref(stream), str(stream), str(stream.task_owner))
                self._label_of[seen[1]] = f"stream.{self._stream_label(stream)}.events"
            _, stream_key, task_key = seen
            self.events_total += 1
            self.stream_inbound_time[tp] = monotonic()
            self.events_by_stream[stream_key] += 1
            self.events_by_task[task_key] += 1
            self.events_active += 1
            return {"time_in": self.time(), "time_out": None, "time_total": None}

        def on_stream_event_out(self, tp, offset, stream, event, state=None) -> None:
            Monitor.on_stream_event_out(self, tp, offset, stream, event, state)
            if state is not None:
                runtimes = self._runtimes_ms
                runtimes.append(self.secs_to_ms(state["time_total"]))
                if len(runtimes) >= pending_max:
                    self._observe_runtimes()

        def on_message_out(self, tp, offset, message) -> None:  # (the active messages are counted at the sync)
            Monitor.on_message_out(self, tp, offset, message)

        def track_tp_end_offset(self, tp, offset) -> None:
            self.tp_end_offsets[tp] = offset

        def on_send_initiated(self, producer, topic, message, keysize, valsize):
            sent = self._sent_by_topic.get(topic)
            if sent is None:
                sent = self._sent_by_topic[topic] = self._metrics.topic_messages_sent.labels(topic=f"topic.{topic}")
            sent.inc()
            return Monitor.on_send_initiated(self, producer, topic, message, keysize, valsize)

        def _observe_runtimes(self) -> None:
            runtimes, self._runtimes_ms = self._runtimes_ms, []
            observe = self._metrics.events_runtime_latency.observe
            for ms in runtimes:
                observe(ms)

        def _count(self, series: Any, total: int) -> None:
            """Bring the counter ``series`` up to ``total``."""
            synced = self._synced.get(series, 0)
            if total > synced:
                series.inc(total - synced)
                self._synced[series] = total

        def sync(self) -> None:
            """Bring the Prometheus series up to the counts and positions kept since the last sync."""
            m = self._metrics
            self._count(m.messages_received, self.messages_received_total)
            m.active_messages.set(self.messages_active)
            for topic, received in list(self.messages_received_by_topic.items()):
                self._count(m.messages_received_per_topics.labels(topic=topic), received)
            for tp, offset in list(self.tp_read_offsets.items()):
                m.messages_received_per_topics_partition.labels(topic=tp.topic, partition=tp.partition).set(offset)
            for tp, offset in list(self.tp_end_offsets.items()):
                m.topic_partition_end_offset.labels(topic=tp.topic, partition=tp.partition).set(offset)
            self._count(m.total_events, self.events_total)
            m.total_active_events.set(self.events_active)
            by_label: dict = {}
            for stream_key, label in list(self._label_of.items()):
                by_label[label] = by_label.get(label, 0) + self.events_by_stream[stream_key]
            for label, events in by_label.items():
                self._count(m.total_events_per_stream.labels(stream=label), events)
            self._observe_runtimes()

    monitor = LeanPrometheusMonitor(metrics=None)
    registry.register(_Synced(monitor))  # ahead of the series: collected first
    monitor._metrics = FaustMetrics.create(registry, prefix)
    return monitor


class _Synced:
    """A Prometheus collector with no series of its own: collecting it syncs ``monitor``; registered
    ahead of the monitor's series, it brings them up to date for each scrape."""

    def __init__(self, monitor: Any) -> None:
        self.monitor = monitor

    def describe(self) -> list:  # (without it a registry that describes its collectors collects this one)
        return []

    def collect(self) -> list:
        self.monitor.sync()
        return []


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

