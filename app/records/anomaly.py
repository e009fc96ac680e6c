"""A transaction that the anomaly detector flags."""

from app.records.base import NAMESPACE, Record


class Anomaly(Record):
    """An anomaly score above the threshold in force when the transaction was seen."""

    transaction_id: str
    event_time: float
    score: float
    threshold: float
    threshold_kind: str  # "fixed" or "quantile"
    model_version: str
    processing_time: float

    class Meta:
        namespace = NAMESPACE
