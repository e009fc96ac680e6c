"""Window features of a transaction, as the Handbook's baseline defines them (Faust-free, pure).

* :mod:`app.features.panes` - sparse panes: hopping windows at one state update per event.
* :class:`CardWindows` (:func:`card_update`) - per card: transactions and mean amount, 1/7/30 days.
* :class:`TerminalWindows` (:func:`terminal_add_label`, :func:`terminal_features`) - per terminal,
  from received labels: transactions and fraud ratio, 1/7/30 days ending a delay before.
* :func:`calendar_features` - weekend and night flags (UTC).
* :class:`TransactionFeatures` - the one feature function of a transaction, used by the scorer,
  the anomaly agent (``ANOMALY_WINDOW_FEATURES``), the Spark jobs and plain loops;
  :class:`StreamFeatures` drives it over dicts of states.
"""
from app.features.calendar import calendar_features
from app.features.card import CardWindows, card_features, card_update
from app.features.stream import StreamFeatures, merged
from app.features.terminal import TerminalWindows, terminal_add_label, terminal_features
from app.features.transaction import TransactionFeatures, has_id

__all__ = [
    "CardWindows", "StreamFeatures", "TerminalWindows", "TransactionFeatures", "calendar_features",
    "card_features", "card_update", "has_id", "merged", "terminal_add_label", "terminal_features",
]
