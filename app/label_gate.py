"""Labels held back until the service has scored the transaction that made them due.

A replay sends a label once a transaction ``D`` later in event time has been sent (the labels'
delay, :func:`app.replay.replay`). A replay faster than the service sends both long before the
scorer takes them, and the labels' consumer, which has little to do, runs ahead of the scorer: a
label can then reach the model before transactions that came earlier in event time are scored,
even before its own, and the scores are better than a service that learns labels ``D`` late could
give. Holding each label until the score of the transaction that made it due is on the scores
topic keeps the order of event time (a label is learned after every transaction before its due
time is scored, never before), whatever the replay's speed; it comes a little later than ``D``,
by the time a score takes to come back and the label to go out.

:class:`LabelGate` is the bookkeeping alone (no Kafka): :func:`app.replay.replay` feeds it the
labels as they fall due and the transaction ids of the scores as they come, and sends what it
releases.

>>> gate = LabelGate()
>>> gate.hold("tx-2", "label of tx-0")        # due once tx-2 is scored
[]
>>> gate.scored("tx-1"), gate.scored("tx-2")
([], ['label of tx-0'])
>>> gate.hold("tx-1", "label of tx-1")        # tx-1 is already scored: it goes now
['label of tx-1']
>>> gate.hold_to_end("label of tx-3")         # due after the last transaction
>>> gate.end(4), gate.waiting                 # 4 transactions sent, 2 of them scored
([], 1)
>>> gate.scored("tx-0"), gate.scored("tx-3")  # the last one scored: the rest goes
([], ['label of tx-3'])
>>> gate.waiting
0
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

__all__ = ["LabelGate"]


class LabelGate:
    """Labels (any values) held until a transaction id is scored, or until every transaction sent is.

    Scores come at least once: a transaction scored twice (a worker's restart) counts once.
    """

    def __init__(self) -> None:
        self._scored: set[str] = set()
        self._held: defaultdict[str, list[Any]] = defaultdict(list)
        self._at_end: list[Any] = []
        self._sent: int | None = None  # transactions sent, once the replay has sent them all

    @property
    def waiting(self) -> int:
        """Labels held."""
        return sum(len(labels) for labels in self._held.values()) + len(self._at_end)

    @property
    def scored_count(self) -> int:
        """Transactions scored (each once)."""
        return len(self._scored)

    def hold(self, due: str, label: Any) -> list[Any]:
        """Hold ``label`` until transaction ``due`` is scored; ``[label]`` if it already is."""
        if due in self._scored:
            return [label]
        self._held[due].append(label)
        return []

    def hold_to_end(self, label: Any) -> None:
        """Hold ``label`` until every transaction sent is scored (its delay ends after the stream)."""
        self._at_end.append(label)

    def scored(self, transaction_id: str) -> list[Any]:
        """A score came for ``transaction_id``: the labels it releases."""
        self._scored.add(transaction_id)
        released = self._held.pop(transaction_id, [])
        return released + self._release_end()

    def end(self, sent: int) -> list[Any]:
        """The replay has sent its ``sent`` transactions: the labels held to the end, if all are scored."""
        self._sent = sent
        return self._release_end()

    def _release_end(self) -> list[Any]:
        if self._sent is None or not self._at_end or len(self._scored) < self._sent:
            return []
        released, self._at_end = self._at_end, []
        return released
