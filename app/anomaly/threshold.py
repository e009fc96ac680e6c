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


def make_threshold(kind: str = "quantile", value: float = 0.8, q: float = 0.995,
                   window: int = 10_000) -> FixedThreshold | RollingQuantileThreshold:
    """A threshold of the given ``kind``: ``"fixed"`` (at ``value``) or ``"quantile"`` (the ``q``-quantile
    of the last ``window`` scores); the parameters of the other kind are ignored.

    >>> make_threshold()
    RollingQuantileThreshold(q=0.995, window=10000)
    >>> make_threshold("fixed", value=0.75)
    FixedThreshold(0.75)
    >>> make_threshold("median")
    Traceback (most recent call last):
    ...
    ValueError: threshold kind must be one of ('fixed', 'quantile'), got 'median'
    """
    if kind == "fixed":
        return FixedThreshold(value)
    if kind == "quantile":
        return RollingQuantileThreshold(q, window)
    raise ValueError(f"threshold kind must be one of {KINDS}, got {kind!r}")
