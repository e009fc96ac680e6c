"""The scorer's verdict on one transaction."""

import typing

from app.records.base import NAMESPACE, Record


class Score(Record):
    """Fraud probability, decision and provenance for one transaction.

    ``event_time`` is the transaction's; ``processing_time`` is when the score was made (both
    seconds since the epoch), so ``processing_time - event_time`` is the end-to-end latency of a
    live stream. ``events_learned`` is how many labelled events the model had learned when it scored.
    """

    transaction_id: str
    event_time: float
    fraud_probability: float
    decision: bool
    threshold: float
    model_version: str
    events_learned: int
    processing_time: float
    anomaly_score: typing.Optional[float] = None
    label: typing.Optional[int] = None
    partition: int = -1
    offset: int = -1

    class Meta:
        namespace = NAMESPACE
