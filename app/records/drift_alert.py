"""A change detected in one monitored stream."""

import typing

from app.records.base import NAMESPACE, Record


class DriftAlert(Record):
    """What changed, where, by how much, and what was done about it."""

    detector: str  # e.g. "ADWIN(delta=0.002)"
    stream: str  # the monitored stream: "error", "score" or "feature:Amount"
    event_time: float
    position: int  # values the detector had seen when it fired
    mean_before: float
    mean_after: float
    width: int  # the detector's window width after the change
    mitigation: str  # "none", "reset" or "challenger"
    model_version: str
    processing_time: float
    transaction_id: typing.Optional[str] = None
    partition: int = -1  # the source partition; -1 for the central learner's error stream (no partition's)
    offset: int = -1  # of the message that fired it (the central learner's: in the examples topic)
    description: typing.Optional[str] = None  # what changed, in words (app.drift.describe)

    class Meta:
        namespace = NAMESPACE
