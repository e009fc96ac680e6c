"""Per-card windows: how many transactions and their mean amount over the last 1, 7 and 30 days.

These are the Handbook's ``CUSTOMER_ID_NB_TX_<k>DAY_WINDOW`` and
``CUSTOMER_ID_AVG_AMOUNT_<k>DAY_WINDOW`` (*Reproducible Machine Learning for Credit Card Fraud
Detection*, chapter 3, "Baseline feature transformation"): windows ending at the transaction and
including it, so a card's first transaction has ``NB_TX = 1`` and ``AVG_AMOUNT`` = its amount.

The state of a card is ``{"offset": <last applied source offset or None>, "panes": [[pane, n,
amount_sum], ...]}`` (:mod:`app.features.panes`), one update per transaction. The ``k``-day window
of a transaction at time ``t`` is the sum of the ``k * 86400 / hop`` panes ending with ``t``'s
pane: it starts on a pane boundary, so it covers between ``k`` days minus one hop and ``k`` days
before ``t``'s pane (the Handbook's are exactly ``(t - k days, t]``).

Hop: one hour by default. The 1-day window then misses at most the hour at its start (4% of it),
and a card's state holds at most one pane per hour in which it was used in the last 30 days: at a
few transactions a day, a few dozen panes (a pane per day would make the 1-day window anything from
1 to 2 days long; a pane per minute would bring it closer still, but a card used every minute of a
busy hour then holds up to 60 panes for that hour).

Amount ratios (``amount_ratios=True``, off by default: not among the Handbook's features):
``CUSTOMER_ID_AMOUNT_OVER_AVG_<k>DAY_WINDOW``, the transaction's amount over the card's mean amount
in the ``k``-day window (which includes it; 0 when that mean is 0). No new state: they are read from
the same panes. A tree splits a count or a mean at fixed values, the same for every card; a ratio
puts one threshold on "much more than this card usually spends", whatever the card's usual amount
(the Handbook simulator's compromised cards spend five times their usual amounts).

Replays: a caller that passes each event's source ``offset`` (Kafka offsets of one partition only
grow, and a card's events are in one partition) makes updates idempotent: an event at or before
the offset the state last applied is not added again, and its features are read from the state as
it is (after a crash, the table may hold events the consumer reads again; their features then also
count any later events of the card the table had taken in).

>>> cards = CardWindows(days=(1, 7), hop_s=3600)
>>> cards.names
('CUSTOMER_ID_NB_TX_1DAY_WINDOW', 'CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW', 'CUSTOMER_ID_NB_TX_7DAY_WINDOW', 'CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW')
>>> state, f = cards.update(None, event_time=0.0, amount=10.0, offset=0)
>>> list(f.values())
[1.0, 10.0, 1.0, 10.0]
>>> state, f = cards.update(state, event_time=2 * 86400.0, amount=30.0, offset=1)
>>> list(f.values())
[1.0, 30.0, 2.0, 20.0]
>>> cards.update(state, event_time=2 * 86400.0, amount=30.0, offset=1) == (state, f)   # seen already
True
>>> state
{'offset': 1, 'panes': [[0, 1, 10.0], [48, 1, 30.0]]}
>>> ratios = CardWindows(days=(7,), amount_ratios=True)
>>> ratios.update(state, event_time=2 * 86400.0 + 60, amount=100.0, offset=2)[1]   # 100 over the mean 140 / 3
{'CUSTOMER_ID_NB_TX_7DAY_WINDOW': 3.0, 'CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW': 46.666666666666664, 'CUSTOMER_ID_AMOUNT_OVER_AVG_7DAY_WINDOW': 2.142857142857143}
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.features import panes as P

__all__ = ["CardWindows", "card_features", "card_update"]

DAY_S = 86_400


class CardWindows:
    """Per-card transaction count and mean amount over windows of ``days`` days, from panes
    ``hop_s`` seconds wide (a whole number of them in every window); with ``amount_ratios``, the
    amount over each window's mean too."""

    def __init__(self, days: Sequence[int] = (1, 7, 30), hop_s: int = 3_600, amount_ratios: bool = False):
        if not days:
            raise ValueError("need at least one window")
        self.days = tuple(int(k) for k in days)
        self.hop_s = int(hop_s)
        self.amount_ratios = bool(amount_ratios)
        self.widths = tuple(P.panes_in(k * DAY_S, self.hop_s) for k in self.days)
        self.retention = max(self.widths)  # panes a state keeps behind its newest one
        self.names = tuple(name for k in self.days for name in (
            f"CUSTOMER_ID_NB_TX_{k}DAY_WINDOW", f"CUSTOMER_ID_AVG_AMOUNT_{k}DAY_WINDOW"))
        if self.amount_ratios:
            self.names += tuple(f"CUSTOMER_ID_AMOUNT_OVER_AVG_{k}DAY_WINDOW" for k in self.days)

    def __repr__(self) -> str:
        return f"CardWindows(days={self.days}, hop_s={self.hop_s}, amount_ratios={self.amount_ratios})"

    def update(self, state: dict | None, event_time: float, amount: float,
               offset: int | None = None) -> tuple[dict, dict[str, float]]:
        """The state with the transaction added (unless ``offset`` was applied already) and its
        features; ``state`` ``None`` is a card not seen yet. ``state`` is left unchanged."""
        state = state or {"offset": None, "panes": []}
        last = state.get("offset")
        if offset is not None and last is not None and offset <= last:
            return state, self.features(state, event_time, amount)
        pane = P.pane_of(event_time, self.hop_s)
        panes = P.add(state["panes"], pane, (1, amount))
        panes = P.drop_before(panes, max(pane, panes[-1][0]) - self.retention + 1)
        new = {"offset": last if offset is None else offset, "panes": panes}
        return new, self.features(new, event_time, amount)

    def features(self, state: dict | None, event_time: float, amount: float | None = None) -> dict[str, float]:
        """The windows ending with ``event_time``'s pane, read from ``state`` (nothing added); with
        :attr:`amount_ratios`, ``amount`` over each window's mean (0 when the mean is 0; ``amount``
        is then required)."""
        panes = state["panes"] if state else []
        pane = P.pane_of(event_time, self.hop_s)
        out: dict[str, float] = {}
        for k, width in zip(self.days, self.widths):
            n, total = P.window_sum(panes, pane - width + 1, pane, 2)
            out[f"CUSTOMER_ID_NB_TX_{k}DAY_WINDOW"] = float(n)
            out[f"CUSTOMER_ID_AVG_AMOUNT_{k}DAY_WINDOW"] = total / n if n else 0.0
        if self.amount_ratios:
            if amount is None:
                raise ValueError("amount_ratios needs the transaction's amount")
            for k in self.days:
                mean = out[f"CUSTOMER_ID_AVG_AMOUNT_{k}DAY_WINDOW"]
                out[f"CUSTOMER_ID_AMOUNT_OVER_AVG_{k}DAY_WINDOW"] = amount / mean if mean else 0.0
        return out

    def expired(self, state: dict | None, now: float) -> bool:
        """Whether no window read at ``now`` or later can see anything of ``state`` (the card's key
        can then be deleted from its table).

        >>> cards = CardWindows(days=(1,), hop_s=3600)
        >>> state, _ = cards.update(None, 0.0, 5.0)
        >>> cards.expired(state, 86_399.0), cards.expired(state, 86_400.0)
        (False, True)
        """
        if not state or not state["panes"]:
            return True
        return state["panes"][-1][0] < P.pane_of(now, self.hop_s) - self.retention + 1


_DEFAULT = CardWindows()


def card_update(state: dict | None, event_time: float, amount: float, offset: int | None = None,
                windows: CardWindows = _DEFAULT) -> tuple[dict, dict[str, Any]]:
    """:meth:`CardWindows.update` of ``windows`` (by default 1, 7, 30 days on 1-hour panes)."""
    return windows.update(state, event_time, amount, offset)


def card_features(state: dict | None, event_time: float, windows: CardWindows = _DEFAULT) -> dict[str, float]:
    """:meth:`CardWindows.features` of ``windows`` (by default 1, 7, 30 days on 1-hour panes)."""
    return windows.features(state, event_time)
