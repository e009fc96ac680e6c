"""Prometheus metrics of the worker, served at ``/metrics`` on its web port."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_IN = Counter("fraud_events_in_total", "Messages consumed, per topic.", ["topic"], registry=REGISTRY)
EVENTS_OUT = Counter("fraud_events_out_total", "Messages produced, per topic.", ["topic"], registry=REGISTRY)
DEAD_LETTERS = Counter(
    "fraud_dead_letters_total", "Input messages sent to the dead-letter topic, per source topic and reason.",
    ["topic", "reason"], registry=REGISTRY,
)
DECISIONS = Counter("fraud_decisions_total", "Scores by decision at the threshold.", ["decision"], registry=REGISTRY)
SCORE_LATENCY = Histogram(
    "fraud_consume_to_produce_seconds", "From taking a transaction off the stream to handing its score to the producer.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
FRAUD_SCORE = Histogram(
    "fraud_score", "Fraud probabilities given.", buckets=(0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.99),
    registry=REGISTRY,
)
EVENTS_LEARNED = Gauge("fraud_model_events_learned", "Labelled events the model has learned.", ["partition"], registry=REGISTRY)


def render() -> bytes:
    """The metrics in Prometheus's text format."""
    return generate_latest(REGISTRY)
