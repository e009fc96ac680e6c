"""The one feature function of a transaction: its raw model input with its window and calendar
features, used alike by the scorer, the anomaly agent, the Spark jobs and plain loops.

:class:`TransactionFeatures` holds the parameters (windows, delay, pane widths) and nothing else:
the states of cards and terminals are the caller's (a Faust table, a dict, a Spark group), passed in
and returned as plain JSON-able values. Per transaction it does one card update; terminal windows
are only read (they change when labels are received, :meth:`TransactionFeatures.label`).

A transaction without a card id (``None`` or ``""``) gets no card features, one without a terminal
id no terminal features: their names are left out of the dict (River's models take a missing
feature as absent), and the caller counts them. The calendar flags come with either id: a
transaction with neither (as the ULB file's) is left as its raw input, exactly as with the
features off.

>>> tf = TransactionFeatures(card_days=(1,), terminal_days=(1,), terminal_delay_s=86400)
>>> tf.names
('CUSTOMER_ID_NB_TX_1DAY_WINDOW', 'CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW', 'TERMINAL_ID_NB_TX_1DAY_WINDOW', 'TERMINAL_ID_RISK_1DAY_WINDOW', 'TX_DURING_WEEKEND', 'TX_DURING_NIGHT')
>>> terminal = tf.label(None, tx_event_time=1522540800.0, label=1)          # a fraud on 2018-04-01
>>> x, card = tf.for_transaction({"Amount": 20.0}, None, terminal, event_time=1522540800.0 + 86400 + 7200,
...                              card_id="c1", terminal_id="t1")
>>> x
{'Amount': 20.0, 'CUSTOMER_ID_NB_TX_1DAY_WINDOW': 1.0, 'CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW': 20.0, 'TERMINAL_ID_NB_TX_1DAY_WINDOW': 1.0, 'TERMINAL_ID_RISK_1DAY_WINDOW': 1.0, 'TX_DURING_WEEKEND': 0.0, 'TX_DURING_NIGHT': 1.0}
>>> tf.for_transaction({"Amount": 20.0}, None, terminal, event_time=1522540800.0 + 43200, card_id=None,
...                    terminal_id="t1")[0]
{'Amount': 20.0, 'TERMINAL_ID_NB_TX_1DAY_WINDOW': 0.0, 'TERMINAL_ID_RISK_1DAY_WINDOW': 0.0, 'TX_DURING_WEEKEND': 1.0, 'TX_DURING_NIGHT': 0.0}
>>> tf.for_transaction({"Amount": 20.0}, None, None, event_time=1522540800.0, card_id=None, terminal_id="")
({'Amount': 20.0}, None)
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.features.calendar import NAMES as CALENDAR_NAMES
from app.features.calendar import calendar_features
from app.features.card import CardWindows
from app.features.terminal import DELAY_S, TerminalWindows

__all__ = ["TransactionFeatures", "has_id"]


def has_id(value: Any) -> bool:
    """Whether ``value`` is a card or terminal id (not ``None``, not empty).

    >>> has_id("cust-000001"), has_id(""), has_id(None)
    (True, False, False)
    """
    return value is not None and value != ""


class TransactionFeatures:
    """Per-card windows (``card_days``, panes of ``card_hop_s``; with ``amount_ratios``, also the
    transaction's amount over each window's mean amount), per-terminal windows from labels
    (``terminal_days`` ending ``terminal_delay_s`` before the transaction, panes of
    ``terminal_hop_s``) and, when ``calendar``, the weekend and night flags (night: hour <
    ``night_until_hour``, UTC). See :mod:`app.features.card`, :mod:`app.features.terminal` and
    :mod:`app.features.calendar`."""

    def __init__(self, card_days: Sequence[int] = (1, 7, 30), terminal_days: Sequence[int] = (1, 7, 30),
                 terminal_delay_s: float = DELAY_S, card_hop_s: int = 3_600, terminal_hop_s: int = 86_400,
                 calendar: bool = True, night_until_hour: int = 6, amount_ratios: bool = False):
        self.cards = CardWindows(card_days, card_hop_s, amount_ratios)
        self.terminals = TerminalWindows(terminal_days, terminal_delay_s, terminal_hop_s)
        self.calendar = bool(calendar)
        self.night_until_hour = int(night_until_hour)
        #: The feature names, in the order :meth:`for_transaction` adds them after the raw input.
        self.names: tuple[str, ...] = (*self.cards.names, *self.terminals.names,
                                       *(CALENDAR_NAMES if self.calendar else ()))

    def __repr__(self) -> str:
        return (f"TransactionFeatures(card_days={self.cards.days}, terminal_days={self.terminals.days}, "
                f"terminal_delay_s={self.terminals.delay_s:g}, card_hop_s={self.cards.hop_s}, "
                f"terminal_hop_s={self.terminals.hop_s}, calendar={self.calendar}, "
                f"night_until_hour={self.night_until_hour}, amount_ratios={self.cards.amount_ratios})")

    def params(self) -> dict:
        """The constructor's arguments (JSON-able): e.g. to record in a model's meta (``amount_ratios``
        only when on, so the parameters of the Handbook's features read the same with or without it).

        >>> TransactionFeatures(**TransactionFeatures(card_days=(2,)).params()).cards.days
        (2,)
        >>> "amount_ratios" in TransactionFeatures().params(), TransactionFeatures(amount_ratios=True).params()["amount_ratios"]
        (False, True)
        """
        return {"card_days": list(self.cards.days), "terminal_days": list(self.terminals.days),
                "terminal_delay_s": self.terminals.delay_s, "card_hop_s": self.cards.hop_s,
                "terminal_hop_s": self.terminals.hop_s, "calendar": self.calendar,
                "night_until_hour": self.night_until_hour,
                **({"amount_ratios": True} if self.cards.amount_ratios else {})}

    # --- the parts, each usable alone (the Spark jobs compute cards and terminals in separate groups)
    def card(self, state: dict | None, event_time: float, amount: float,
             offset: int | None = None) -> tuple[dict, dict[str, float]]:
        """One card update: :meth:`app.features.card.CardWindows.update`."""
        return self.cards.update(state, event_time, amount, offset)

    def terminal(self, state: dict | None, event_time: float) -> dict[str, float]:
        """A terminal's windows, read only: :meth:`app.features.terminal.TerminalWindows.features`."""
        return self.terminals.features(state, event_time)

    def label(self, state: dict | None, tx_event_time: float, label: int, offset: int | None = None) -> dict:
        """A terminal's state with a received label: :meth:`~app.features.terminal.TerminalWindows.add_label`."""
        return self.terminals.add_label(state, tx_event_time, label, offset)

    def calendar_of(self, event_time: float) -> dict[str, float]:
        """The calendar flags (empty when ``calendar`` is off)."""
        return calendar_features(event_time, self.night_until_hour) if self.calendar else {}

    # --- the whole
    def for_transaction(self, raw: Mapping[str, float], card_state: dict | None, terminal_state: dict | None,
                        offset: int | None = None, *, event_time: float, card_id: Any, terminal_id: Any,
                        amount: float | None = None) -> tuple[dict[str, float], dict | None]:
        """``(features, new_card_state)`` of a transaction at ``event_time``: ``raw`` (the model's raw
        input) followed by the features of :attr:`names` that apply (the calendar flags need a card
        or a terminal id). ``amount`` defaults to ``raw["Amount"]``. ``card_state`` /
        ``terminal_state`` are the card's and terminal's states (``None``: none yet);
        ``new_card_state`` is ``None`` when ``card_id`` is not an id (nothing to write). ``offset``
        makes the card update idempotent (see :mod:`app.features.card`)."""
        out = dict(raw)
        new_card = None
        card, terminal = has_id(card_id), has_id(terminal_id)
        if card:
            new_card, feats = self.cards.update(card_state, event_time,
                                                raw["Amount"] if amount is None else amount, offset)
            out.update(feats)
        if terminal:
            out.update(self.terminals.features(terminal_state, event_time))
        if self.calendar and (card or terminal):
            out.update(calendar_features(event_time, self.night_until_hour))
        return out, new_card
