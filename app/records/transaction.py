"""A card transaction, as the replay producer or a real producer sends it, and the model's input."""

import functools
import typing
from collections.abc import Mapping, Sequence

import settings
from app.records.base import NAMESPACE, Record

V_NAMES = tuple(f"V{i}" for i in range(1, 29))
#: The ULB data set's numeric columns: the default model input (``settings.MODEL_FEATURES``).
FEATURE_NAMES = V_NAMES + ("Amount",)
#: Fields that carry the answer (or the clock): never model input.
NOT_FEATURES = frozenset({"Class", "fraud_scenario", "event_time"})


class Transaction(Record):
    """One card transaction.

    ``event_time`` is in seconds since the Unix epoch. ``V1``..``V28`` are the ULB data set's
    (PCA) columns; data without them, such as the Handbook's simulator, leaves them out and they
    are 0.0 (the wire cannot carry null there and stay readable by consumers of the earlier
    schema): leave them out of ``settings.MODEL_FEATURES`` for such data. ``Class`` is the fraud
    label when the producer knows it (1 = fraud), else ``None`` and the label may come later on
    the labels topic; ``fraud_scenario`` is the simulator's kind of fraud (0 = genuine, 1-3), sent
    with ``Class``. ``card_id``, ``merchant_id`` and ``terminal_id`` identify the card and where it
    was used, when the producer knows them.

    >>> t = Transaction(transaction_id="t-1", event_time=1.5, Amount=9.99, card_id="cust-000001",
    ...                 terminal_id="term-000002")
    >>> t.V1, t.Class is None, model_features(t, ["Amount"])
    (0.0, True, {'Amount': 9.99})
    """

    transaction_id: str
    event_time: float
    Amount: float
    V1: float = 0.0
    V2: float = 0.0
    V3: float = 0.0
    V4: float = 0.0
    V5: float = 0.0
    V6: float = 0.0
    V7: float = 0.0
    V8: float = 0.0
    V9: float = 0.0
    V10: float = 0.0
    V11: float = 0.0
    V12: float = 0.0
    V13: float = 0.0
    V14: float = 0.0
    V15: float = 0.0
    V16: float = 0.0
    V17: float = 0.0
    V18: float = 0.0
    V19: float = 0.0
    V20: float = 0.0
    V21: float = 0.0
    V22: float = 0.0
    V23: float = 0.0
    V24: float = 0.0
    V25: float = 0.0
    V26: float = 0.0
    V27: float = 0.0
    V28: float = 0.0
    Class: typing.Optional[int] = None
    card_id: typing.Optional[str] = None
    merchant_id: typing.Optional[str] = None
    terminal_id: typing.Optional[str] = None
    fraud_scenario: typing.Optional[int] = None

    class Meta:
        namespace = NAMESPACE

    def features(self) -> "dict[str, float]":
        """The model's input: the fields named by ``settings.MODEL_FEATURES``, in that order
        (by default ``V1``..``V28`` and ``Amount``); see :func:`model_features`."""
        return model_features(self, settings.MODEL_FEATURES)


@functools.lru_cache(maxsize=32)
def _checked(names: tuple[str, ...]) -> tuple[str, ...]:
    fields = Transaction.avro_schema_to_python()["fields"]
    numeric = {f["name"] for f in fields if {"double", "long"} & set(f["type"] if isinstance(f["type"], list) else [f["type"]])}
    for name in names:
        if name in NOT_FEATURES:
            raise ValueError(f"{name} cannot be a model feature (it carries the label or the clock)")
        if name not in numeric:
            raise ValueError(f"{name} is not a numeric field of Transaction (model features: "
                             f"{sorted(numeric - NOT_FEATURES)})")
    return names


def model_features(record: "Transaction | Mapping[str, typing.Any]", names: Sequence[str]) -> "dict[str, float]":
    """The model input of ``record`` (a :class:`Transaction` or its decoded dict): the fields
    ``names``, in that order, leaving out those whose value is ``None``.

    ``names`` must be numeric fields of :class:`Transaction` other than :data:`NOT_FEATURES`, else
    ``ValueError`` (checked once per distinct list).

    >>> model_features({"Amount": 12.5, "V1": -1.0, "event_time": 0.0}, ["Amount", "V1"])
    {'Amount': 12.5, 'V1': -1.0}
    >>> model_features({"Amount": 3.0}, ["Class"])
    Traceback (most recent call last):
    ...
    ValueError: Class cannot be a model feature (it carries the label or the clock)
    """
    values = record if isinstance(record, Mapping) else record.__dict__
    out: dict[str, float] = {}
    for name in _checked(tuple(names)):
        value = values.get(name)
        if value is not None:
            out[name] = value
    return out
