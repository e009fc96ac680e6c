"""The scorer's verdict on one transaction."""

import typing

from app.records.base import NAMESPACE, FieldDict, Record


class FeatureContribution(Record):
    """One feature's share of a logistic regression's log-odds: ``weight * standardized value``
    (positive pushes towards fraud)."""

    name: str
    contribution: float

    class Meta:
        namespace = NAMESPACE


class Score(Record):
    """Fraud probability, decision and provenance for one transaction.

    ``event_time`` is the transaction's; ``processing_time`` is when the score was made (both
    seconds since the epoch), so ``processing_time - event_time`` is the end-to-end latency of a
    live stream. ``events_learned`` is how many labelled events the model had learned when it scored.
    With ``SCORE_EXPLANATIONS`` on, ``members`` holds each blend member's own probability by name
    (``arf``, ``lr``, ``lr_pos10``) and ``top_features`` the three features with the largest
    ``|weight * standardized value|`` in the blend's plain logistic regression, largest first, both
    from the model that gave ``fraud_probability`` (null when off, or when the model has no such
    member).
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
    members: typing.Optional[typing.Dict[str, float]] = None
    top_features: typing.Optional[typing.List[FeatureContribution]] = None

    def to_representation(self) -> dict:
        """The value as plain data: the top features as dicts too (Faust keeps nested records as
        objects, which the Avro writer does not take)."""
        value = super().to_representation()
        if value.get("top_features") is not None:
            value["top_features"] = [f.to_representation() if isinstance(f, Record) else f for f in value["top_features"]]
        return value

    class Meta:
        namespace = NAMESPACE


class ScoreValue(FieldDict):
    """A score as the scorer made it (the dict the Avro writer takes), readable as attributes too,
    as a :class:`Score` read back from the scores topic is (``score.fraud_probability``).

    >>> score = ScoreValue({"transaction_id": "t-1", "fraud_probability": 0.25, "label": None})
    >>> score.fraud_probability, score.label is None
    (0.25, True)
    >>> score.members
    Traceback (most recent call last):
    ...
    AttributeError: 'ScoreValue' has no field 'members'
    """

    __slots__ = ()
