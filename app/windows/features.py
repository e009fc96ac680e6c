"""Window features of a transaction: the aggregates of the hopping windows that contain its event
time, and the seconds since the previous transaction of the same card.

Which features, exactly
-----------------------
With ``size / step = k`` windows per event (3 with the defaults 60 s / 20 s), slot ``win0`` is the
newest window that contains the event time (it opened less than ``step`` ago) and ``win{k-1}`` the
oldest (it opened up to ``size`` ago, so it sees the most history). Each slot gives ``count``,
``amount_sum``, ``amount_mean`` and ``amount_max``; ``seconds_since_previous`` closes the dict:
``4 * k + 1`` features whose names depend only on ``k`` (:meth:`WindowFeatures.feature_names`).

* The features **include the event itself** (the windows are updated first, then read): a card's
  first transaction has ``win*_count == 1``. This is what Faust's windowed table holds after the
  event is applied, so stream and batch agree, and a burst shows from its first repeat on.
* The key is the card id, or the global key (``"*"`` by default) for a transaction without one
  (then the windows count the whole stream).
* ``seconds_since_previous`` is ``event_time`` minus the greatest earlier event time of the key,
  clipped to ``[0, gap_cap]``; a key's first transaction gets ``gap_cap``.
* A late event (its time below the newest seen) updates only the windows that are not expired
  (:meth:`HoppingWindows.expired`); an expired window is neither reopened nor read, its slot gives
  zeros. Results depend on the order events are processed in, and only on that: the same ordered
  input gives the same features in the stream and in batch.

>>> wf = WindowFeatures(size=60, step=20, expires=300)
>>> f = wf.update("card-1", 100.0, 10.0)
>>> f["win0_count"], f["win2_count"], f["seconds_since_previous"]
(1.0, 1.0, 3600.0)
>>> f = wf.update("card-1", 125.0, 30.0)   # windows [80, 140) and [100, 160) hold both events
>>> [f[f"win{i}_count"] for i in range(3)], f["win2_amount_mean"], f["seconds_since_previous"]
([1.0, 2.0, 2.0], 20.0, 25.0)
>>> wf.update(None, 125.0, 5.0)["win2_count"]   # no card id: the global key, its own windows
1.0
"""
from __future__ import annotations

import heapq
import math
from typing import MutableMapping

from app.windows import aggregates
from app.windows.base import HoppingWindows, Window

GAP_FEATURE = "seconds_since_previous"


def feature_names(per_event: int) -> list[str]:
    """The names :meth:`WindowFeatures.update` returns, in order, for ``per_event`` windows per event.

    >>> feature_names(1)
    ['win0_count', 'win0_amount_sum', 'win0_amount_mean', 'win0_amount_max', 'seconds_since_previous']
    """
    return [f"win{i}_{stat}" for i in range(per_event) for stat in aggregates.STATS] + [GAP_FEATURE]


def window_key(card_id: str | None, global_key: str = "*") -> str:
    """The window key of a transaction: its card id, else ``global_key``.

    >>> window_key("card-1"), window_key(None), window_key("", global_key="all")
    ('card-1', '*', 'all')
    """
    return card_id if card_id else global_key


def slot_features(windows: list[Window], states: list[list | None]) -> dict[str, float]:
    """Features from the aggregates of the windows containing an event (oldest first, as from
    :meth:`HoppingWindows.ranges`); ``None`` for an empty or expired window."""
    out: dict[str, float] = {}
    for slot, state in enumerate(reversed(states)):  # slot 0 = the newest window
        out.update(aggregates.as_features(state, prefix=f"win{slot}_"))
    return out


def gap_feature(previous: float | None, event_time: float, cap: float) -> float:
    """Seconds since ``previous`` (clipped to ``[0, cap]``; ``cap`` when there is none)."""
    if previous is None:
        return float(cap)
    return float(min(cap, max(0.0, event_time - previous)))


class WindowFeatures:
    """Per-key hopping-window aggregates in memory, updated one transaction at a time.

    Deterministic and Faust-free: the scorer's pure path and Spark use it; the worker's
    changelog-backed twin is :class:`app.windows.tables.WindowTables` (same windows, same features).
    Memory: the open windows of every key (expired ones are dropped as event time advances) and one
    float per key for the previous event time.

    Parameters
    ----------
    size, step, expires
        The hopping windows, in seconds (see :class:`~app.windows.base.HoppingWindows`;
        ``expires=None`` or ``0`` keeps every window).
    gap_cap
        ``seconds_since_previous`` is clipped to this, and a key's first transaction gets it.
    global_key
        The window key of a transaction without a card id.

    >>> WindowFeatures().windows
    HoppingWindows(size=60, step=20, expires=300.0)
    """

    def __init__(self, size: float = 60, step: float = 20, expires: float | None = 300,
                 gap_cap: float = 3600.0, global_key: str = "*") -> None:
        self.windows = HoppingWindows(size, step, expires)
        self.gap_cap = float(gap_cap)
        self.global_key = global_key
        self.state: MutableMapping[tuple, list] = {}  # slot (key, window start) -> aggregate
        self.last_seen: MutableMapping[str, float] = {}
        self.watermark = -math.inf
        self.late_updates_dropped = 0  # (event, window) pairs skipped because the window had expired
        self._ends: list[tuple[float, tuple]] = []  # heap of (window end, slot)

    @property
    def feature_names(self) -> list[str]:
        return feature_names(self.windows.per_event)

    def update(self, card_id: str | None, event_time: float, amount: float) -> dict[str, float]:
        """Add one transaction and return its features (see the module doc)."""
        key = window_key(card_id, self.global_key)
        t = float(event_time)
        if t > self.watermark:
            self.watermark = t
            self._drop_expired()
        horizon = self.windows.expiry_horizon(self.watermark)
        ranges = self.windows.ranges(t)
        states: list[list | None] = []
        for window in ranges:
            if window.end <= horizon:
                self.late_updates_dropped += 1
                states.append(None)
                continue
            slot = self._slot(key, window)
            previous = self.state.get(slot)
            if previous is None:
                heapq.heappush(self._ends, (window.end, slot))
            self.state[slot] = new = aggregates.add(previous, amount)
            states.append(new)
        features = slot_features(ranges, states)
        previous_time = self.last_seen.get(key)
        features[GAP_FEATURE] = gap_feature(previous_time, t, self.gap_cap)
        if previous_time is None or t > previous_time:
            self.last_seen[key] = t
        return features

    def aggregate(self, card_id: str | None, window: Window) -> list | None:
        """The aggregate of one window of a key (``None`` if empty or expired)."""
        return self.state.get(self._slot(window_key(card_id, self.global_key), window))

    def _slot(self, key: str, window: Window) -> tuple:
        """Where a key's window is kept in :attr:`state`."""
        return (key, window.start)

    def _drop_expired(self) -> None:
        horizon = self.windows.expiry_horizon(self.watermark)
        ends, state = self._ends, self.state
        while ends and ends[0][0] <= horizon:
            _, slot = heapq.heappop(ends)
            if slot in state:
                del state[slot]
