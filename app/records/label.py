"""A fraud label that arrives after its transaction."""

from app.records.base import NAMESPACE, Record


class Label(Record):
    """The ground truth for one transaction (``label``: 1 = fraud, 0 = genuine).

    >>> Label(transaction_id="t-1", label=1, event_time=10.0).label
    1
    """

    transaction_id: str
    label: int
    event_time: float  # of the transaction it labels
    label_time: float = 0.0  # when the label was produced (seconds since the epoch)

    class Meta:
        namespace = NAMESPACE
