"""A card transaction, as the replay producer or a real producer sends it."""

import typing

from app.records.base import NAMESPACE, Record

FEATURE_NAMES = tuple(f"V{i}" for i in range(1, 29)) + ("Amount",)


class Transaction(Record):
    """One card transaction.

    ``event_time`` is in seconds since the Unix epoch; ``V1``..``V28`` and ``Amount`` are the
    ULB dataset's columns; ``Class`` is the fraud label when the producer knows it (1 = fraud),
    else ``None`` and the label may come later on the labels topic.

    >>> t = Transaction(transaction_id="t-1", event_time=1.5, **{f"V{i}": 0.0 for i in range(1, 29)},
    ...                 Amount=9.99)
    >>> t.features()["Amount"], t.Class is None
    (9.99, True)
    """

    transaction_id: str
    event_time: float
    V1: float
    V2: float
    V3: float
    V4: float
    V5: float
    V6: float
    V7: float
    V8: float
    V9: float
    V10: float
    V11: float
    V12: float
    V13: float
    V14: float
    V15: float
    V16: float
    V17: float
    V18: float
    V19: float
    V20: float
    V21: float
    V22: float
    V23: float
    V24: float
    V25: float
    V26: float
    V27: float
    V28: float
    Amount: float
    Class: typing.Optional[int] = None
    card_id: typing.Optional[str] = None
    merchant_id: typing.Optional[str] = None

    class Meta:
        namespace = NAMESPACE

    def features(self) -> "dict[str, float]":
        """The model's input: ``V1``..``V28`` and ``Amount``, in that order."""
        d = self.__dict__
        return {name: d[name] for name in FEATURE_NAMES}
