"""A card transaction, as the replay producer or a real producer sends it, and the model's input."""

import functools
import operator
import typing
from collections.abc import Mapping, Sequence

from app.records.base import NAMESPACE, FieldDict, Record

V_NAMES = tuple(f"V{i}" for i in range(1, 29))
#: The ULB data set's numeric columns: the default model input (``settings.MODEL_FEATURES``).
FEATURE_NAMES = V_NAMES + ("Amount",)
#: Fields that carry the answer (or the clock): never model input.
NOT_FEATURES = frozenset({"Class", "fraud_scenario", "event_time"})


class Transaction(Record):
    """One card transaction.

    ``event_time`` is in seconds since the Unix epoch. ``V1``..``V28`` are the ULB data set's
    (PCA) columns, required: a producer that drops one is refused by the registry rather than
    read as 0.0. Data without them, such as the Handbook's simulator, sends 0.0 (the replay does)
    and leaves them out of ``settings.MODEL_FEATURES``. ``Class`` is the fraud
    label when the producer knows it (1 = fraud), else ``None`` and the label may come later on
    the labels topic; ``fraud_scenario`` is the simulator's kind of fraud (0 = genuine, 1-3), sent
    with ``Class``. ``card_id``, ``merchant_id`` and ``terminal_id`` identify the card and where it
    was used, when the producer knows them.

    >>> t = Transaction(transaction_id="t-1", event_time=1.5, Amount=9.99, card_id="cust-000001",
    ...                 terminal_id="term-000002", **{f"V{i}": 0.0 for i in range(1, 29)})
    >>> t.V1, t.Class is None, model_features(t, ["Amount"])
    (0.0, True, {'Amount': 9.99})
    """

    transaction_id: str
    event_time: float
    Amount: float
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
    Class: typing.Optional[int] = None
    card_id: typing.Optional[str] = None
    merchant_id: typing.Optional[str] = None
    terminal_id: typing.Optional[str] = None
    fraud_scenario: typing.Optional[int] = None

    class Meta:
        namespace = NAMESPACE

    def features(self, names: "typing.Sequence[str]" = FEATURE_NAMES) -> "dict[str, float]":
        """The fields ``names`` (by default ``V1``..``V28`` and ``Amount``), in that order; see
        :func:`model_features`. The scorer takes the names from ``settings.MODEL_FEATURES``."""
        return model_features(self, names)


class TransactionValue(FieldDict):
    """A decoded transaction as the input topic hands it to the agents: the Avro decoder's dict of
    every :class:`Transaction` field, readable as attributes too (``tx.Class``, ``tx.features()``).

    Faust makes a topic's value with ``value_type.from_data(decoded)``. A :class:`Transaction` runs
    every field through Faust's descriptors and coercion, which costs more CPU per event than the
    Avro decode before it; the decoder has already checked the fields against the schema (and the
    codec's validator their values), so this keeps its dict as it is.

    >>> tx = TransactionValue.from_data({"transaction_id": "t-1", "event_time": 1.5, "Amount": 9.99,
    ...                                  "V1": 0.5, "Class": None, "card_id": "cust-000001"})
    >>> tx.transaction_id, tx.Class is None, tx.card_id, tx.features(["Amount", "V1"])
    ('t-1', True, 'cust-000001', {'Amount': 9.99, 'V1': 0.5})
    >>> tx.merchant
    Traceback (most recent call last):
    ...
    AttributeError: 'TransactionValue' has no field 'merchant'
    """

    __slots__ = ()

    @classmethod
    def from_data(cls, data: "Mapping[str, typing.Any]", *, preferred_type: "type | None" = None) -> "TransactionValue":
        """The value of a decoded message (the hook Faust calls for a topic's ``value_type``)."""
        return cls(data)

    def features(self, names: "typing.Sequence[str]" = FEATURE_NAMES) -> "dict[str, float]":
        """As :meth:`Transaction.features`."""
        return model_features(self, names)


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
    >>> model_features({"Amount": 12.5, "V1": None}, ["Amount", "V1", "V2"])   # None and missing: left out
    {'Amount': 12.5}
    >>> model_features({"Amount": 3.0}, ["Class"])
    Traceback (most recent call last):
    ...
    ValueError: Class cannot be a model feature (it carries the label or the clock)
    """
    return _picker(tuple(names))(record)


def feature_picker(names: Sequence[str]) -> "typing.Callable[[typing.Any], dict[str, float]]":
    """:func:`model_features` with ``names`` checked and bound once: what the scorer calls on each
    transaction (no list to check or hash per call).

    >>> pick = feature_picker(["Amount", "V1"])
    >>> pick({"Amount": 12.5, "V1": -1.0}), pick({"Amount": 1.0, "V1": None})
    ({'Amount': 12.5, 'V1': -1.0}, {'Amount': 1.0})
    """
    return _picker(tuple(names))


@functools.lru_cache(maxsize=32)
def _picker(names: tuple[str, ...]) -> "typing.Callable[[typing.Any], dict[str, float]]":
    names = _checked(names)
    get = operator.itemgetter(*names) if len(names) > 1 else None

    def pick(record: "Transaction | Mapping[str, typing.Any]") -> "dict[str, float]":
        values = record if isinstance(record, (dict, Mapping)) else record.__dict__
        if get is not None:  # every field there and set (the usual case): picked in one call
            try:
                picked = get(values)
            except KeyError:
                picked = None
            if picked is not None and None not in picked:
                return dict(zip(names, picked))
        out: dict[str, float] = {}
        for name in names:
            value = values.get(name)
            if value is not None:
                out[name] = value
        return out

    return pick
