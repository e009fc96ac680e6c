"""Per-terminal windows from labels: transactions and fraud ratio over 1, 7 and 30 days, ending a
delay before the transaction.

These are the Handbook's ``TERMINAL_ID_NB_TX_<k>DAY_WINDOW`` and ``TERMINAL_ID_RISK_<k>DAY_WINDOW``
(chapter 3, "Baseline feature transformation"): the windows of a transaction at ``t`` end at
``t - delay`` (default 7 days, the Handbook's feedback delay), and the risk is the share of frauds
among the window's transactions (0 for an empty window).

Unlike the Handbook, which computes them from the whole labelled table, the windows hold only the
labels the service has *received*: :meth:`TerminalWindows.add_label` is called when a label comes
in, with its transaction's event time (which decides its pane), and :meth:`TerminalWindows.features`
only reads. A label received after a transaction is scored is not in that score, so no label leaks
into a score; with labels that come ``delay`` after their transaction, the windows hold about what
the Handbook's hold.

The state of a terminal is ``{"offset": <last applied source offset or None>, "panes": [[pane,
n_labels, n_frauds], ...]}`` (:mod:`app.features.panes`), one update per label. Hop: one day by
default. The windows end ``delay`` before the transaction, a convention already a week wide; a
terminal's state then holds at most ``delay`` plus 30 days of panes, 37 with the defaults, however
busy the terminal is. A state keeps the panes that a transaction at or after its newest label's
event time can read; an older label (beyond that) is not kept.

>>> terminals = TerminalWindows(days=(1, 7), delay_s=7 * 86400, hop_s=86400)
>>> state = terminals.add_label(None, tx_event_time=86400.0 * 3 + 5, label=1)
>>> state = terminals.add_label(state, tx_event_time=86400.0 * 2, label=0)
>>> state
{'offset': None, 'panes': [[2, 1, 0], [3, 1, 1]]}
>>> terminals.features(state, event_time=86400.0 * 10 + 1)    # window of 1 day: day 3
{'TERMINAL_ID_NB_TX_1DAY_WINDOW': 1.0, 'TERMINAL_ID_RISK_1DAY_WINDOW': 1.0, 'TERMINAL_ID_NB_TX_7DAY_WINDOW': 2.0, 'TERMINAL_ID_RISK_7DAY_WINDOW': 0.5}
>>> terminals.features(state, event_time=86400.0 * 9.5)       # window of 1 day: day 2
{'TERMINAL_ID_NB_TX_1DAY_WINDOW': 1.0, 'TERMINAL_ID_RISK_1DAY_WINDOW': 0.0, 'TERMINAL_ID_NB_TX_7DAY_WINDOW': 1.0, 'TERMINAL_ID_RISK_7DAY_WINDOW': 0.0}
"""
from __future__ import annotations

from collections.abc import Sequence

from app.features import panes as P

__all__ = ["TerminalWindows", "terminal_add_label", "terminal_features"]

DAY_S = 86_400
DELAY_S = 7 * DAY_S


class TerminalWindows:
    """Per-terminal labelled transactions and fraud ratio over windows of ``days`` days ending
    ``delay_s`` seconds before the transaction, from panes ``hop_s`` seconds wide."""

    def __init__(self, days: Sequence[int] = (1, 7, 30), delay_s: float = DELAY_S, hop_s: int = DAY_S):
        if not days:
            raise ValueError("need at least one window")
        if delay_s < 0:
            raise ValueError("delay_s must be >= 0")
        self.days = tuple(int(k) for k in days)
        self.delay_s = float(delay_s)
        self.hop_s = int(hop_s)
        self.widths = tuple(P.panes_in(k * DAY_S, self.hop_s) for k in self.days)
        self.names = tuple(name for k in self.days for name in (
            f"TERMINAL_ID_NB_TX_{k}DAY_WINDOW", f"TERMINAL_ID_RISK_{k}DAY_WINDOW"))

    def __repr__(self) -> str:
        return f"TerminalWindows(days={self.days}, delay_s={self.delay_s:g}, hop_s={self.hop_s})"

    def _first_kept(self, newest_time: float) -> int:
        """The first pane a transaction at or after ``newest_time`` can read."""
        return P.pane_of(newest_time - self.delay_s, self.hop_s) - max(self.widths) + 1

    def add_label(self, state: dict | None, tx_event_time: float, label: int,
                  offset: int | None = None) -> dict:
        """The state with the label of a transaction at ``tx_event_time`` added (``label`` 1: fraud),
        unless ``offset`` is at or before the last one applied; ``state`` is left unchanged."""
        state = state or {"offset": None, "panes": []}
        last = state.get("offset")
        if offset is not None and last is not None and offset <= last:
            return state
        pane = P.pane_of(tx_event_time, self.hop_s)
        panes = P.add(state["panes"], pane, (1, 1 if label else 0))
        newest = max(pane, panes[-1][0])
        panes = P.drop_before(panes, self._first_kept(newest * self.hop_s))
        return {"offset": last if offset is None else offset, "panes": panes}

    def features(self, state: dict | None, event_time: float) -> dict[str, float]:
        """The windows of a transaction at ``event_time`` (read only)."""
        panes = state["panes"] if state else []
        end = P.pane_of(event_time - self.delay_s, self.hop_s)
        out: dict[str, float] = {}
        for k, width in zip(self.days, self.widths):
            n, frauds = P.window_sum(panes, end - width + 1, end, 2)
            out[f"TERMINAL_ID_NB_TX_{k}DAY_WINDOW"] = float(n)
            out[f"TERMINAL_ID_RISK_{k}DAY_WINDOW"] = frauds / n if n else 0.0
        return out

    def expired(self, state: dict | None, now: float) -> bool:
        """Whether no transaction at ``now`` or later can read anything of ``state``."""
        if not state or not state["panes"]:
            return True
        return state["panes"][-1][0] < self._first_kept(now)


_DEFAULT = TerminalWindows()


def terminal_add_label(state: dict | None, tx_event_time: float, label: int, offset: int | None = None,
                       windows: TerminalWindows = _DEFAULT) -> dict:
    """:meth:`TerminalWindows.add_label` of ``windows`` (by default 1, 7, 30 days, 7 days' delay,
    1-day panes)."""
    return windows.add_label(state, tx_event_time, label, offset)


def terminal_features(state: dict | None, event_time: float, windows: TerminalWindows = _DEFAULT) -> dict[str, float]:
    """:meth:`TerminalWindows.features` of ``windows``."""
    return windows.features(state, event_time)
