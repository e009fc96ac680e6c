"""The worker's window features: :class:`WindowTables`, Faust tables with the logic of
:class:`app.windows.WindowFeatures`, so stream and batch give the same numbers.

Tables (changelog-backed, restored on restart or rebalance before the agents consume):

* ``<prefix>-aggregates`` - a hopping-window table, ``.hopping(size, step).relative_to_field(
  Transaction.event_time)``: key ``(card id or global key, (start, start + size - 0.1))``, the key
  Faust's windowed tables use, value ``[count, amount sum, amount max]`` (JSON). Readers may use its
  windowed view (:attr:`WindowTables.windowed`, e.g. ``windowed[card].current()``).
* ``<prefix>-last-seen`` - a plain table: key -> greatest event time seen.

Expiry runs on event time here, not in Faust's table cleaner: Faust's cleaner compares window ends
with the *wall clock* and drops expired windows from the local store without writing a tombstone,
so they return after a restart, and a replay of past data would lose windows that are open in event
time. :class:`WindowTables` deletes a window (``del table[key]``: a tombstone on the changelog) once
the greatest event time seen is ``expires`` past its end (:meth:`HoppingWindows.expired`), exactly
when :class:`~app.windows.WindowFeatures` drops it.

Partitions: the input topic is keyed by transaction id, and table changes go to the changelog
partition of the event being processed. With one partition (the default) the features are exact.
With several, a card's transactions may land on different partitions, each worker then sees part
of the card's history (its windows count only its share), the watermark is one per worker, and a
window restored after a restart may be deleted through another partition's changelog. Exact
per-card features with several partitions need producers that key transactions by card id
(transactions and labels must then be co-partitioned by that key too).

Write path: :meth:`WindowTables.update` must run inside a stream iteration (Faust needs the current
event for the changelog partition); with ``stream.take_events`` pass each ``event``.
"""
from __future__ import annotations

import heapq
import math
import weakref
from contextlib import contextmanager
from typing import Any, Iterator

from app.records import Transaction
from app.windows.features import WindowFeatures


@contextmanager
def _current_event(event: Any) -> Iterator[None]:
    """Make ``event`` Faust's current event (what a table write needs) for the block."""
    if event is None:
        yield
        return
    from faust.streams import _current_event as current

    token = current.set(weakref.ref(event))
    try:
        yield
    finally:
        current.reset(token)


class WindowTables(WindowFeatures):
    """Per-key hopping-window aggregates in Faust tables; ``update`` as in :class:`WindowFeatures`
    (the same code: only where the aggregates and the last event times are kept differs).

    ``app`` is the Faust app the tables belong to, ``prefix`` starts their names, ``partitions`` is
    the number of partitions of their changelogs (that of the input topic); ``size``, ``step``,
    ``expires``, ``gap_cap`` and ``global_key`` are as in :class:`WindowFeatures`.
    """

    def __init__(self, app: Any, prefix: str = "window", size: float = 60, step: float = 20,
                 expires: float | None = 300, gap_cap: float = 3600.0, global_key: str = "*",
                 partitions: int = 1) -> None:
        super().__init__(size, step, expires, gap_cap, global_key)
        # no key/value types: Faust serialises both as JSON (keys come back as tuples on recovery)
        self.table = app.Table(f"{prefix}-aggregates", partitions=partitions,
                               help="Hopping-window aggregates [count, amount sum, amount max] per key.")
        # The window is declared without Faust's wall-clock expiry (see the module doc).
        self.windowed = self.table.hopping(self.windows.size, self.windows.step).relative_to_field(
            Transaction.event_time)
        self.state = self.table
        self.last_seen = app.Table(f"{prefix}-last-seen", partitions=partitions,
                                   help="Greatest event time seen per window key.")
        self.watermark: float | None = None  # None until known (restored tables are read first)
        self.last_seen.on_recover(self._restore)

    async def _restore(self) -> None:
        self.watermark = None

    def _restore_now(self) -> None:
        """Rebuild the watermark and the expiry heap from the (restored) tables."""
        self.watermark = max((float(v) for v in self.last_seen.values()), default=-math.inf)
        size = self.windows.size
        ends = [(float(rng[0]) + size, (key, (float(rng[0]), float(rng[1])))) for key, rng in self.table.keys()]
        heapq.heapify(ends)
        self._ends = ends

    def _slot(self, key: str, window) -> tuple:
        return (key, window.faust_range())

    def update(self, card_id: str | None, event_time: float, amount: float, event: Any = None) -> dict[str, float]:
        """Add one transaction to the tables and return its features (as
        :meth:`app.windows.WindowFeatures.update` does, the event included)."""
        with _current_event(event):
            if self.watermark is None:
                self._restore_now()
            return super().update(card_id, event_time, amount)
