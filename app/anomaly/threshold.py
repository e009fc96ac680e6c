"""When an anomaly score is high enough to flag: a fixed value, or a rolling quantile of recent scores.

A threshold is asked for its value *before* it sees the current score, then updated with it, so a
score is compared with the scores that came before it.

>>> t = RollingQuantileThreshold(q=0.5, window=4)
>>> for s in (0.1, 0.2, 0.3, 0.4):
...     t.update(s)
>>> t.value()
0.25
>>> t.update(0.9); t.value()   # 0.1 has left the window (the quantile interpolates)
0.35
>>> FixedThreshold(0.8).value()
0.8
"""
from __future__ import annotations

import math

from river import stats

import settings

KINDS = ("fixed", "quantile")


class FixedThreshold:
    """Always the same value."""

    kind = "fixed"

    def __init__(self, value: float) -> None:
        self._value = float(value)

    def value(self) -> float:
        return self._value

    def update(self, score: float) -> None:
        """Nothing to learn."""

    def __repr__(self) -> str:
        return f"FixedThreshold({self._value:g})"


class RollingQuantileThreshold:
    """The ``q``-quantile of the last ``window`` scores (``inf`` before any score: nothing flags)."""

    kind = "quantile"

    def __init__(self, q: float, window: int) -> None:
        if not 0.0 < q < 1.0:
            raise ValueError(f"quantile must be in (0, 1), got {q!r}")
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window!r}")
        self.q, self.window = float(q), int(window)
        self._quantile = stats.RollingQuantile(self.q, self.window)

    def value(self) -> float:
        got = self._quantile.get()
        return math.inf if got is None else float(got)

    def update(self, score: float) -> None:
        self._quantile.update(score)

    def __repr__(self) -> str:
        return f"RollingQuantileThreshold(q={self.q:g}, window={self.window})"


def make_threshold(kind: str | None = None, value: float | None = None, q: float | None = None,
                   window: int | None = None) -> FixedThreshold | RollingQuantileThreshold:
    """The threshold the settings ask for (``ANOMALY_THRESHOLD_KIND`` and its parameters).

    >>> make_threshold("quantile", q=0.99, window=1000)
    RollingQuantileThreshold(q=0.99, window=1000)
    """
    kind = settings.ANOMALY_THRESHOLD_KIND if kind is None else kind
    if kind == "fixed":
        return FixedThreshold(settings.ANOMALY_THRESHOLD if value is None else value)
    if kind == "quantile":
        return RollingQuantileThreshold(settings.ANOMALY_QUANTILE if q is None else q,
                                        settings.ANOMALY_QUANTILE_WINDOW if window is None else window)
    raise ValueError(f"threshold kind must be one of {KINDS}, got {kind!r}")
