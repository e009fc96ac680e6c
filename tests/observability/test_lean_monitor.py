"""The worker's Faust monitor exports the series Faust's own Prometheus monitor exports, with the
same values, once the registry is collected."""
import types

from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.types import TP
from prometheus_client import CollectorRegistry

from app.observability import lean_prometheus_monitor


class Agent:
    def __init__(self, label: str) -> None:
        self.label = label

    def __str__(self) -> str:
        return f"agent {self.label}"


class Stream:
    def __init__(self, label: str) -> None:
        self.task_owner, self.shortlabel = Agent(label), f"Stream: {label}"


def drive(monitor) -> None:
    """The hooks Faust calls for a few messages and events on two topics."""
    streams = {"tx": Stream("tx"), "labels": Stream("labels")}
    for offset in range(5):
        for topic, partition in (("tx", 0), ("tx", 1), ("labels", 0)):
            tp = TP(topic, partition)
            message = types.SimpleNamespace(time_in=None)
            monitor.on_message_in(tp, offset, message)
            monitor.track_tp_end_offset(tp, offset + 10)
            state = monitor.on_stream_event_in(tp, offset, streams[topic], None)
            if offset < 4:  # one event of each partition still being processed, its message not acked
                monitor.on_stream_event_out(tp, offset, streams[topic], None, state)
                monitor.on_message_out(tp, offset, message)


def samples(registry) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in registry.collect() for s in family.samples
            if not s.name.endswith("_created") and "runtime" not in s.name}


def test_same_series_and_values_as_faust_monitor():
    faust_registry, lean_registry = CollectorRegistry(), CollectorRegistry(auto_describe=True)  # as app.metrics'
    drive(PrometheusMonitor(FaustMetrics.create(faust_registry, "demo")))
    lean = lean_prometheus_monitor(lean_registry, "demo")
    drive(lean)
    expected = samples(faust_registry)
    assert expected[("demo_messages_received_total", ())] == 15.0
    assert samples(lean_registry) == expected
    drive(lean)  # counted again since the last scrape: counters grow by the new counts only
    assert lean_registry.get_sample_value("demo_messages_received_total") == 30.0
    assert lean_registry.get_sample_value("demo_total_events_per_stream_total", {"stream": "stream.tx.events"}) == 20.0
    assert lean_registry.get_sample_value("demo_active_messages") == 6.0


def test_processing_times_are_observed_by_the_scrape_or_once_too_many_wait():
    registry = CollectorRegistry()
    monitor = lean_prometheus_monitor(registry, "demo", pending_max=3)
    stream, tp = Stream("tx"), TP("tx", 0)
    for offset in range(4):
        monitor.on_stream_event_out(tp, offset, stream, None, monitor.on_stream_event_in(tp, offset, stream, None))
    observed = {s.name: s.value for f in monitor._metrics.events_runtime_latency.collect() for s in f.samples}
    assert observed["demo_events_runtime_ms_count"] == 3.0  # the first three, at the third
    assert registry.get_sample_value("demo_events_runtime_ms_count") == 4.0  # the scrape observes the fourth
