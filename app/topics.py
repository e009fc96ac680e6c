"""The service's topics, their records and their codecs, all named from :mod:`settings`."""
from __future__ import annotations

from functools import lru_cache

import settings
from app.dead_letters import DeadLetteringTopic
from app.records import DeadLetter, Label, Score, Transaction, Anomaly, DriftAlert
from app.serialization import ConfluentAvroCodec, make_registry_client
from app.serialization.avro import validate_transaction
from app.worker import app


@lru_cache(maxsize=1)
def registry_client():
    auth = (settings.SCHEMA_REGISTRY_USER, settings.SCHEMA_REGISTRY_PASSWORD) if settings.SCHEMA_REGISTRY_USER else None
    return make_registry_client(settings.SCHEMA_REGISTRY_URL, auth=auth)


def codec(topic: str, record: type, validate=None) -> ConfluentAvroCodec:
    return ConfluentAvroCodec(registry_client(), topic, record.avro_schema_to_python(), validate=validate)


def record_decoder(topic: str, record: type, validate=None):
    """Bytes of ``topic`` -> a ``record``, outside of a stream (reading a topic back)."""
    loads = codec(topic, record, validate).loads
    return lambda data: record(**loads(data))


def _output(name: str, record: type):
    return app.topic(
        name, key_type=bytes, value_type=record, key_serializer="raw", value_serializer=codec(name, record),
        partitions=settings.TOPIC_PARTITIONS,
    )


transactions = DeadLetteringTopic(
    app, topics=[settings.TRANSACTIONS_TOPIC], key_type=bytes, value_type=Transaction, key_serializer="raw",
    value_serializer=codec(settings.TRANSACTIONS_TOPIC, Transaction, validate_transaction),
    partitions=settings.TOPIC_PARTITIONS,
)
labels = DeadLetteringTopic(
    app, topics=[settings.LABELS_TOPIC], key_type=bytes, value_type=Label, key_serializer="raw",
    value_serializer=codec(settings.LABELS_TOPIC, Label), partitions=settings.TOPIC_PARTITIONS,
)
scores = _output(settings.SCORES_TOPIC, Score)
anomalies = _output(settings.ANOMALIES_TOPIC, Anomaly)
drift_alerts = _output(settings.DRIFT_ALERTS_TOPIC, DriftAlert)
dead_letters = _output(settings.DEAD_LETTERS_TOPIC, DeadLetter)
