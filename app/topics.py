"""The service's topics, their records and their codecs, named from settings.

:class:`Topics` is built once by the composition step (:mod:`app.service`) for a Faust app; the
agents receive it. The input topics (transactions, labels) send what they cannot decode to the
dead-letter topic (:class:`~app.dead_letters.DeadLetteringTopic`). A transaction reaches the agents
as a :class:`~app.records.transaction.TransactionValue` (the decoded dict, read as attributes), not
as a Faust record: making one per event would cost more than decoding it.
"""
from __future__ import annotations

import faust
from faust.exceptions import ValueDecodeError

from app.dead_letters import DeadLetteringTopic, DeadLetters
from app.records import Anomaly, DeadLetter, DriftAlert, Label, Score, Transaction
from app.records.transaction import TransactionValue
from app.serialization import ConfluentAvroCodec, make_registry_client
from app.serialization.avro import validate_label, validate_transaction


def registry_client(s):
    """The schema registry client of settings ``s`` (with basic auth when a user is set)."""
    auth = (s.SCHEMA_REGISTRY_USER, s.SCHEMA_REGISTRY_PASSWORD) if s.SCHEMA_REGISTRY_USER else None
    return make_registry_client(s.SCHEMA_REGISTRY_URL, auth=auth)


class Topics:
    """The topics of settings ``s`` on ``app``, and codecs for reading them outside of a stream."""

    def __init__(self, app, s) -> None:
        self.settings = s
        self.registry = registry_client(s)
        self.dead_letters = DeadLetters(self._output(app, s.DEAD_LETTERS_TOPIC, DeadLetter))
        self.transactions = self._input(app, s.TRANSACTIONS_TOPIC, Transaction, validate_transaction,
                                        value_type=TransactionValue)
        self.labels = self._input(app, s.LABELS_TOPIC, Label, validate_label)
        self.scores = self._output(app, s.SCORES_TOPIC, Score)
        self.anomalies = self._output(app, s.ANOMALIES_TOPIC, Anomaly)
        self.drift_alerts = self._output(app, s.DRIFT_ALERTS_TOPIC, DriftAlert)

    def codec(self, topic: str, record: type, validate=None) -> ConfluentAvroCodec:
        return ConfluentAvroCodec(self.registry, topic, record.avro_schema_to_python(), validate=validate)

    def record_decoder(self, topic: str, record: type, validate=None):
        """Bytes of ``topic`` -> a ``record``, outside of a stream (reading a topic back)."""
        loads = self.codec(topic, record, validate).loads
        return lambda data: record(**loads(data))

    def names(self) -> list[str]:
        """Every topic of the service (what the worker creates at start)."""
        s = self.settings
        return [s.TRANSACTIONS_TOPIC, s.LABELS_TOPIC, s.SCORES_TOPIC, s.ANOMALIES_TOPIC, s.DRIFT_ALERTS_TOPIC,
                s.DEAD_LETTERS_TOPIC]

    def _input(self, app, name: str, record: type, validate=None, value_type: type | None = None) -> DeadLetteringTopic:
        """An input topic read with ``record``'s schema; its values are ``value_type`` (``record``
        unless given: anything with ``from_data(decoded)``)."""
        schema = ValueSchema(key_type=bytes, value_type=value_type or record, key_serializer="raw",
                             value_serializer=self.codec(name, record, validate))
        return DeadLetteringTopic(app, topics=[name], schema=schema, partitions=self.settings.TOPIC_PARTITIONS,
                                  dead_letters=self.dead_letters)

    def _output(self, app, name: str, record: type):
        return app.topic(
            name, key_type=bytes, value_type=record, key_serializer="raw", value_serializer=self.codec(name, record),
            partitions=self.settings.TOPIC_PARTITIONS,
        )


class ValueSchema(faust.Schema):
    """A topic's schema that refuses a message without a value (a tombstone) as a decode error,
    whatever its value type (Faust does so for its records only)."""

    def loads_value(self, app, message, *, loads=None, serializer=None):
        if message.value is None:
            raise ValueDecodeError("the message has no value")
        return super().loads_value(app, message, loads=loads, serializer=serializer)
