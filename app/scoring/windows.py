"""Window features on the scoring path: per-card windows in a changelog-backed table partitioned
like the transactions, per-terminal windows in a table every worker reads whole, fed by the labels
the scorer learns.

The features themselves are :class:`~app.features.transaction.TransactionFeatures` (pure, shared
with Spark and the plain loops); this module keeps their states where a worker finds them:

* **Cards.** A transaction is keyed by its card id (see docs/architecture.md, "Keys"), so all of a
  card's transactions come through one partition of the transactions topic and one scorer. Its
  state is one entry of the card table, written to the changelog partition of that source
  partition (:func:`app.state.changelog.put`, explicit partition: read-back items have no stream
  event), once per transaction, with the transaction's offset: a transaction read again after a
  crash is not counted twice (:mod:`app.features.card`). The changelog record's future goes with
  the scores: the batch is acknowledged only once it is confirmed. A card whose windows are all
  past (idle longer than the longest window) is deleted from the table, a tombstone in its
  changelog (:meth:`ScoringWindows.expire`). The worker keeps each live partition's cards decoded in
  memory, least recently used first, which is also the order they expire in.
* **Terminals.** A terminal's transactions come from any card, so through any partition. When the
  scorer learns a label (in its transaction, or late from the labels topic) it sends ``(terminal
  id, the transaction's event time, label)`` to the terminal-labels topic, keyed by terminal id
  (:meth:`ScoringWindows.label`); the owner of that topic's partition applies it to the terminal
  table, one writer per terminal (:class:`TerminalLabels`), and every worker reads the whole table
  from a copy that follows its changelog (:class:`~app.state.table_view.TableView`). A label
  changes the windows only once the service has received it, so no label leaks into a score; it
  reaches the copies a few Kafka round trips after it is learned, well within the windows' delay
  (by default they end 7 days of event time before the transaction that reads them).

A card entry is its source partition and state, packed (:func:`encode_card`: written once per
transaction); a terminal entry is JSON, ``{"w": state, "at": {source: offset}}``, where ``at``
holds, per source partition of the labels (``t:<p>`` for labels in transactions, ``l:<p>`` for the
labels topic), the last offset applied: a label sent again after a crash is not counted twice.

>>> import types
>>> from app.features.transaction import TransactionFeatures
>>> def table():
...     return types.SimpleNamespace(data={}, send_changelog=lambda partition, key, value, **kw: None)
>>> sent = []
>>> windows = ScoringWindows(TransactionFeatures(card_days=(1,), terminal_days=(1,), calendar=False),
...                          table(), table(), send_label=lambda key, value: sent.append((key, value)))
>>> tx = types.SimpleNamespace(event_time=1.0e9, Amount=30.0, card_id="c1", terminal_id="t1")
>>> x, _ = windows.transaction(tx, {"Amount": 30.0}, partition=0, offset=7)
>>> x["CUSTOMER_ID_NB_TX_1DAY_WINDOW"], x["TERMINAL_ID_NB_TX_1DAY_WINDOW"]
(1.0, 0.0)
>>> windows.transaction(tx, {"Amount": 30.0}, partition=0, offset=7)[0] == x   # read again: counted once
True
>>> windows.label("t1", 1.0e9, 1, "t:0", 7)
>>> sent
[(b't1', b'{"t":1000000000.0,"y":1,"src":"t:0","o":7}')]
"""
from __future__ import annotations

import collections
import json
import logging
import struct
import sys
from array import array
from typing import Any, Callable

from app import metrics
from app.features.transaction import TransactionFeatures, has_id
from app.state.changelog import delete, put

log = logging.getLogger(__name__)


#: A card table value: format version, source partition, last applied offset (-1: none), the first
#: pane's index and the pane count; then each pane's index after the first and its transaction count
#: (uint32), then each pane's amount sum (float64), little-endian. Packed by arrays in C: a card's
#: state is encoded on every transaction's path (a third of the time JSON takes, and smaller).
_CARD_HEAD = struct.Struct("<BiqqI")
_CARD_FORMAT = 1
_SWAP = sys.byteorder != "little"
if array("I").itemsize != 4:
    raise ImportError("the card table's format needs 4-byte unsigned ints in array('I')")


def encode_card(partition: int, state: dict) -> bytes:
    """The card table's value: the source partition and the card's state, packed (``_CARD_HEAD``).

    >>> blob = encode_card(2, {"offset": 5, "panes": [[10, 1, 9.5], [12, 2, 30.25]]})
    >>> len(blob), decode_card(blob)
    (57, (2, {'offset': 5, 'panes': [[10, 1, 9.5], [12, 2, 30.25]]}))
    """
    panes = state["panes"]
    offset = state.get("offset")
    first = panes[0][0] if panes else 0
    counts = array("I", [v for pane in panes for v in (pane[0] - first, pane[1])])
    sums = array("d", [pane[2] for pane in panes])
    if _SWAP:
        counts.byteswap()
        sums.byteswap()
    return (_CARD_HEAD.pack(_CARD_FORMAT, partition, -1 if offset is None else offset, first, len(panes))
            + counts.tobytes() + sums.tobytes())


def decode_card(blob: bytes) -> tuple[int, dict]:
    """``(partition, state)`` of a card table value; ``ValueError`` when it is not one. Values
    written as JSON (``[partition, state]``) are read too.

    >>> decode_card(b'[2,{"offset":null,"panes":[[10,1,9.5]]}]')
    (2, {'offset': None, 'panes': [[10, 1, 9.5]]})
    >>> decode_card(b"\\x07")
    Traceback (most recent call last):
    ...
    ValueError: not a card table value: format b'\\x07', 1 bytes
    """
    if blob[:1] == b"[":
        partition, state = json.loads(blob)
        return partition, state
    head = _CARD_HEAD.size
    if len(blob) < head or blob[0] != _CARD_FORMAT:
        raise ValueError(f"not a card table value: format {blob[:1]!r}, {len(blob)} bytes")
    _, partition, offset, first, n = _CARD_HEAD.unpack_from(blob)
    if len(blob) != head + 16 * n:
        raise ValueError(f"not a card table value: {len(blob)} bytes for {n} panes")
    counts, sums = array("I"), array("d")
    counts.frombytes(blob[head:head + 8 * n])
    sums.frombytes(blob[head + 8 * n:])
    if _SWAP:
        counts.byteswap()
        sums.byteswap()
    panes = [[first + counts[2 * i], counts[2 * i + 1], sums[i]] for i in range(n)]
    return partition, {"offset": None if offset < 0 else offset, "panes": panes}


def encode_terminal_label(event_time: float, label: int, source: str, offset: int) -> bytes:
    """A terminal-labels message's value: the labelled transaction's event time, the label, and the
    source partition and offset the label came from (what makes applying it idempotent)."""
    return json.dumps({"t": event_time, "y": int(label), "src": source, "o": offset}, separators=(",", ":")).encode()


def decode_terminal_label(blob: bytes) -> dict:
    return json.loads(blob)


class ScoringWindows:
    """The window features of the scorer's transactions (see the module's docstring).

    ``features`` computes them; ``cards`` is the changelog-backed card table (``data`` and
    ``send_changelog``), ``terminals`` this worker's copy of the whole terminal table (read only
    here: its ``data``);
    ``send_label(key, value)`` sends a terminal label and returns the future of its confirmation.
    ``table`` names the card table in the metrics (``fraud_window_keys_expired_total{table}``);
    ``count_missing``: count the transactions without ids (the scorer's windows do; a second user of
    the same transactions, the anomaly agent's, does not count them again).
    """

    def __init__(self, features: TransactionFeatures, cards, terminals, send_label: Callable[[bytes, bytes], Any] | None,
                 *, table: str = "cards", count_missing: bool = True):
        self.features = features
        self.table = table
        self.names = features.names
        self.card_table = cards
        self.terminal_table = terminals
        self.send_label = send_label
        # the series each transaction without ids counts in, looked up once (a lookup costs more than the count)
        self._missing = {"card": metrics.WINDOW_IDS_MISSING.labels(id="card"),
                         "terminal": metrics.WINDOW_IDS_MISSING.labels(id="terminal")} if count_missing else None
        self._cards: dict[int, collections.OrderedDict[bytes, dict]] = {}  # per partition, least recent first
        self._terminal_cache: dict[bytes, tuple[bytes, dict | None]] = {}

    # --- partitions -----------------------------------------------------------------------------
    def opened(self, partition: int) -> None:
        """Load ``partition``'s cards from the table (recovered by Faust before the first event)."""
        cards: list[tuple[int, bytes, dict]] = []
        for key, blob in list(self.card_table.data.items()):
            if blob is None:
                continue
            try:
                owner, state = decode_card(blob)
            except (ValueError, TypeError):
                log.error("card table entry %r does not decode: its card starts afresh", key)
                continue
            if owner == partition:
                panes = state.get("panes") or [[0]]
                cards.append((panes[-1][0], key, state))
        self._cards[partition] = collections.OrderedDict((key, state) for _, key, state in sorted(cards))
        if cards:
            log.info("partition %s: %d cards' windows", partition, len(cards))

    def forget(self, partition: int) -> None:
        """``partition`` went to another worker: drop its cards from memory (the table keeps them)."""
        self._cards.pop(partition, None)

    def card_count(self, partition: int) -> int:
        return len(self._cards.get(partition, ()))

    # --- transactions ---------------------------------------------------------------------------
    def transaction(self, tx, raw: dict, partition: int, offset: int) -> tuple[dict, Any]:
        """The model input of ``tx`` (``raw`` with its window features) and the future of its card's
        changelog record (None when it has no card id). A transaction with neither a card nor a
        terminal id is scored on ``raw`` alone (no calendar flags either: data without ids, such as
        the ULB file's, keeps its model input as it is); a missing id is counted in
        ``fraud_window_features_missing_total``."""
        card_id, terminal_id = tx.card_id, tx.terminal_id
        has_card, has_terminal = has_id(card_id), has_id(terminal_id)
        if self._missing is not None:
            if not has_card:
                self._missing["card"].inc()
            if not has_terminal:
                self._missing["terminal"].inc()
        if not (has_card or has_terminal):
            return raw, None
        x, card_key, card_state, new_card = self._inputs(tx, raw, partition, offset)
        if new_card is None or new_card is card_state:  # no card, or read again after a crash: nothing new
            return x, None
        cards = self._cards[partition]
        cards[card_key] = new_card
        cards.move_to_end(card_key)
        return x, put(self.card_table, partition, card_key, encode_card(partition, new_card))

    def preview(self, tx, raw: dict, partition: int) -> dict:
        """The model input ``tx`` would get if it came now on ``partition`` (its card's windows with
        it added), changing nothing: what a synchronous score (``POST /score``) predicts with, so
        that it sees the features the stream's model learns from."""
        if not (has_id(tx.card_id) or has_id(tx.terminal_id)):
            return raw
        return self._inputs(tx, raw, partition, None)[0]

    def _inputs(self, tx, raw: dict, partition: int, offset: int | None) -> tuple[dict, bytes | None, Any, Any]:
        """``tx``'s model input, its card's key, the card's state and its state with ``tx`` added
        (the pure features': nothing is stored here)."""
        cards = self._cards.get(partition)
        if cards is None:
            self.opened(partition)
            cards = self._cards[partition]
        card_id, terminal_id = tx.card_id, tx.terminal_id
        card_key = card_id.encode() if has_id(card_id) else None
        card_state = cards.get(card_key) if card_key is not None else None
        terminal_state = self.terminal(terminal_id) if has_id(terminal_id) else None
        x, new_card = self.features.for_transaction(raw, card_state, terminal_state, offset, event_time=tx.event_time,
                                                    card_id=card_id, terminal_id=terminal_id, amount=tx.Amount)
        return x, card_key, card_state, new_card

    def terminal(self, terminal_id: str) -> dict | None:
        """The terminal's state as this worker's copy of the terminal table holds it."""
        key = terminal_id.encode()
        blob = self.terminal_table.data.get(key)
        if blob is None:
            return None
        cached = self._terminal_cache.get(key)
        if cached is not None and cached[0] is blob:
            return cached[1]
        state = json.loads(blob)["w"]
        self._terminal_cache[key] = (blob, state)
        return state

    def expire(self, partition: int, now: float) -> list:
        """Delete the cards of ``partition`` no window read at event time ``now`` or later can see
        (tombstones in the card table's changelog); the futures of those records."""
        cards = self._cards.get(partition)
        out = []
        while cards:
            key, state = next(iter(cards.items()))
            if not self.features.cards.expired(state, now):
                break
            cards.popitem(last=False)
            out.append(delete(self.card_table, partition, key))
            metrics.WINDOW_KEYS_EXPIRED.labels(table=self.table).inc()
        return out

    # --- labels ---------------------------------------------------------------------------------
    def label(self, terminal_id: str | None, event_time: float, label: int, source: str, offset: int):
        """Send a learned label to its terminal's windows (``source`` and ``offset``: where the label
        came from); the future of the send, None when the transaction had no terminal id."""
        if not has_id(terminal_id):
            return None
        return self.send_label(terminal_id.encode(), encode_terminal_label(event_time, label, source, offset))


class TerminalLabels:
    """The writer of the terminal table: applies each terminal label (from the terminal-labels topic,
    keyed by terminal id, so one writer per terminal) to its terminal's windows, once.

    ``table`` is the terminal table (``data``, ``send_changelog``), written in the changelog
    partition of the label's partition; :meth:`expire` deletes the terminals of a partition no
    transaction can read anything of any more.

    >>> import types
    >>> from app.features.transaction import TransactionFeatures
    >>> table = types.SimpleNamespace(data={}, send_changelog=lambda partition, key, value, **kw: None)
    >>> writer = TerminalLabels(TransactionFeatures(terminal_days=(1,)), table)
    >>> value = encode_terminal_label(86400.0, 1, "t:0", 3)
    >>> _ = writer.apply(b"t1", value, partition=0); _ = writer.apply(b"t1", value, partition=0)  # sent twice
    >>> json.loads(table.data[b"t1"])
    {'w': {'offset': None, 'panes': [[1, 1, 1]]}, 'at': {'t:0': 3}, 'p': 0}
    """

    def __init__(self, features: TransactionFeatures, table) -> None:
        self.features = features
        self.table = table
        self._order: dict[int, collections.OrderedDict[bytes, float]] = {}  # per partition: newest label time
        self._now: dict[int, float] = {}

    def apply(self, key: bytes, value: bytes, partition: int):
        """Apply one terminal label; the future of the table's changelog record (None when the label
        was applied before)."""
        message = decode_terminal_label(value)
        blob = self.table.data.get(key)
        entry = json.loads(blob) if blob is not None else {"w": None, "at": {}, "p": partition}
        source, offset = message["src"], message["o"]
        if offset <= entry["at"].get(source, -1):
            metrics.TERMINAL_LABELS.labels(outcome="duplicate").inc()
            return None
        entry["w"] = self.features.label(entry["w"], message["t"], message["y"])
        entry["at"][source] = offset
        entry["p"] = partition
        order = self._index(partition)
        order[key] = message["t"]
        order.move_to_end(key)
        self._now[partition] = max(self._now.get(partition, message["t"]), message["t"])
        metrics.TERMINAL_LABELS.labels(outcome="applied").inc()
        return put(self.table, partition, key, json.dumps(entry, separators=(",", ":")).encode())

    def _index(self, partition: int) -> collections.OrderedDict[bytes, float]:
        order = self._order.get(partition)
        if order is None:  # the terminals this partition has written, from the table (after a restart)
            found = []
            for key, blob in list(self.table.data.items()):
                if blob is not None:
                    entry = json.loads(blob)
                    if entry.get("p") == partition and entry["w"] and entry["w"]["panes"]:
                        found.append((entry["w"]["panes"][-1][0], key))
            order = self._order[partition] = collections.OrderedDict((key, 0.0) for _, key in sorted(found))
        return order

    def expire(self, partition: int, now: float | None = None) -> list:
        """Delete the terminals of ``partition`` that no transaction at event time ``now`` (default:
        the newest label time this partition has applied) or later can read; their futures."""
        now = self._now.get(partition) if now is None else now
        order = self._order.get(partition)
        out = []
        while now is not None and order:
            key = next(iter(order))
            blob = self.table.data.get(key)
            state = json.loads(blob)["w"] if blob is not None else None
            if state is not None and not self.features.terminals.expired(state, now):
                break
            order.popitem(last=False)
            if blob is not None:
                out.append(delete(self.table, partition, key))
                metrics.WINDOW_KEYS_EXPIRED.labels(table="terminals").inc()
        return out
