"""An in-memory driver of :class:`~app.features.transaction.TransactionFeatures`: the card and
terminal states in dicts, for plain loops, tests and the reference the Spark jobs are checked
against.

:func:`merged` puts transactions and their delayed labels in one event-time order, the order in
which a service fed by a replay receives them: a transaction at ``t``, then its label at ``t +
label_delay``; at equal times, transactions before labels (a label is never received before a
transaction of the same instant), each kind in row order.

>>> from app.features.transaction import TransactionFeatures
>>> sf = StreamFeatures(TransactionFeatures(card_days=(1,), terminal_days=(1,), terminal_delay_s=86400,
...                                         calendar=False))
>>> rows = [{"event_time": 0.0, "card_id": "c", "terminal_id": "t", "Amount": 4.0, "Class": 1},
...         {"event_time": 86400.0 + 1, "card_id": "c", "terminal_id": "t", "Amount": 8.0, "Class": 0}]
>>> for kind, row in merged(rows, label_delay=3600):
...     if kind == "transaction":
...         print(sf.transaction(row))
...     else:
...         sf.label(row["terminal_id"], row["event_time"], row["Class"])
{'Amount': 4.0, 'CUSTOMER_ID_NB_TX_1DAY_WINDOW': 1.0, 'CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW': 4.0, 'TERMINAL_ID_NB_TX_1DAY_WINDOW': 0.0, 'TERMINAL_ID_RISK_1DAY_WINDOW': 0.0}
{'Amount': 8.0, 'CUSTOMER_ID_NB_TX_1DAY_WINDOW': 1.0, 'CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW': 8.0, 'TERMINAL_ID_NB_TX_1DAY_WINDOW': 1.0, 'TERMINAL_ID_RISK_1DAY_WINDOW': 1.0}
"""
from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from app.features.transaction import TransactionFeatures, has_id

__all__ = ["StreamFeatures", "merged"]


def merged(rows: Iterable[Mapping[str, Any]], label_delay: float,
           label_field: str = "Class") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``("transaction", row)`` for each row (in event-time order) and ``("label", row)`` for each
    row whose ``label_field`` is not ``None``, ``label_delay`` seconds after its event time, in one
    order (see the module doc); the labels due after the last transaction come at the end.

    >>> rows = [{"event_time": 0.0, "Class": 0}, {"event_time": 5.0, "Class": None}, {"event_time": 10.0, "Class": 1}]
    >>> [(kind, row["event_time"]) for kind, row in merged(rows, label_delay=10)]
    [('transaction', 0.0), ('transaction', 5.0), ('transaction', 10.0), ('label', 0.0), ('label', 10.0)]
    """
    due: list = []  # (time received, row sequence, row)
    last = None
    for seq, row in enumerate(rows):
        t = row["event_time"]
        if last is not None and t < last:
            raise ValueError(f"rows must be in event-time order ({t} after {last})")
        last = t
        while due and due[0][0] < t:
            yield "label", heapq.heappop(due)[2]
        yield "transaction", row
        if row.get(label_field) is not None:
            heapq.heappush(due, (t + label_delay, seq, row))
    while due:
        yield "label", heapq.heappop(due)[2]


class StreamFeatures:
    """Card states and terminal states in dicts, fed transaction by transaction and label by label.

    ``raw_names`` are the model's raw input fields taken from a transaction (missing or ``None``
    ones left out). ``without_card`` / ``without_terminal`` count the transactions scored without
    card / terminal features.
    """

    def __init__(self, features: TransactionFeatures, raw_names: Sequence[str] = ("Amount",)):
        self.features = features
        self.raw_names = tuple(raw_names)
        self.cards: dict[str, dict] = {}
        self.terminals: dict[str, dict] = {}
        self.without_card = 0
        self.without_terminal = 0

    def transaction(self, tx: Mapping[str, Any], offset: int | None = None) -> dict[str, float]:
        """The features of ``tx`` (a dict with ``event_time``, ``Amount``, ``card_id``,
        ``terminal_id`` and the raw fields), its card's state updated."""
        raw = {name: tx[name] for name in self.raw_names if tx.get(name) is not None}
        card, terminal = tx.get("card_id"), tx.get("terminal_id")
        x, new_card = self.features.for_transaction(
            raw, self.cards.get(card), self.terminals.get(terminal), offset, event_time=tx["event_time"],
            card_id=card, terminal_id=terminal, amount=tx["Amount"])
        if new_card is None:
            self.without_card += 1
        else:
            self.cards[card] = new_card
        if not has_id(terminal):
            self.without_terminal += 1
        return x

    def label(self, terminal_id: Any, tx_event_time: float, label: int) -> None:
        """A label received for a transaction at ``tx_event_time`` on ``terminal_id`` (ignored
        without a terminal id)."""
        if has_id(terminal_id):
            self.terminals[terminal_id] = self.features.label(self.terminals.get(terminal_id), tx_event_time, label)

    def run(self, rows: Iterable[Mapping[str, Any]], label_delay: float) -> Iterator[tuple[Mapping[str, Any], dict]]:
        """``(row, features)`` for each row of ``rows`` (event-time order), their labels received
        ``label_delay`` after them (:func:`merged`)."""
        for kind, row in merged(rows, label_delay):
            if kind == "transaction":
                yield row, self.transaction(row)
            else:
                self.label(row.get("terminal_id"), row["event_time"], row["Class"])
