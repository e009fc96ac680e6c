"""Hopping windows on event time: which windows hold an event, and when a window expires.

The arithmetic is Faust's own (``faust.windows.HoppingWindow``, Python and Cython versions alike),
reproduced here without Faust so that batch code computes the very same windows:

* an event at time ``t`` falls in the windows whose start is one of
  ``range(int(first), int(t) + 1, int(step))`` with ``first = floor(t / step) * step - size + step``;
  with whole-second ``size`` and ``step`` these are the ``size / step`` windows ``[start, start + size)``
  that contain ``t``, oldest first.  Starts are aligned to ``-size`` modulo ``step`` (to multiples of
  ``step`` when ``size`` is a multiple of it, the usual case).
* Faust names a window ``(start, start + size - 0.1)`` in its table keys: :meth:`Window.faust_range`.
* a window is expired once ``end <= current(watermark - expires).start``, the start of the latest
  window that contains ``watermark - expires`` (Faust's ``HoppingWindow.stale`` with the window end).
  Faust's table cleaner takes the wall clock as the watermark; here it is the greatest event time
  seen so far, so replays are deterministic.

>>> windows = HoppingWindows(size=60, step=20, expires=300)
>>> [(w.start, w.end) for w in windows.ranges(65.5)]
[(20.0, 80.0), (40.0, 100.0), (60.0, 120.0)]
>>> windows.ranges(65.5)[0].faust_range()
(20.0, 79.9)
>>> first = windows.ranges(65.5)[0]    # [20, 80) closes when current(watermark - 300) starts at 80
>>> windows.expired(first, watermark=379.9), windows.expired(first, watermark=380.0)
(False, True)
"""
from __future__ import annotations

import math
from typing import NamedTuple

FAUST_END_OFFSET = 0.1  # Faust keys a window by (start, start + size - 0.1)


class Window(NamedTuple):
    """One hopping window, ``[start, end)`` in event-time seconds."""

    start: float
    end: float

    def __contains__(self, t: object) -> bool:  # type: ignore[override]
        return isinstance(t, (int, float)) and self.start <= t < self.end

    def faust_range(self) -> tuple[float, float]:
        """The ``(start, end)`` pair under which a Faust windowed table stores this window."""
        return (self.start, self.end - FAUST_END_OFFSET)


def _whole_seconds(name: str, value: float) -> float:
    if value <= 0 or float(value) != int(value):
        raise ValueError(f"{name} must be a positive whole number of seconds (Faust steps by int()), got {value!r}")
    return float(value)


class HoppingWindows:
    """Windows of ``size`` seconds every ``step`` seconds, kept until ``expires`` seconds after closing.

    ``expires=None`` keeps windows forever (as Faust does without ``expires``).

    >>> HoppingWindows(10, 10).ranges(25.0)   # a tumbling window is a hop of its own size
    [Window(start=20.0, end=30.0)]
    >>> HoppingWindows(10, 3)
    Traceback (most recent call last):
    ...
    ValueError: size (10) must be a multiple of step (3)
    """

    def __init__(self, size: float, step: float, expires: float | None = None) -> None:
        self.size = _whole_seconds("size", size)
        self.step = _whole_seconds("step", step)
        if self.step > self.size:
            raise ValueError(f"step ({step}) must not exceed size ({size})")
        if self.size % self.step:
            raise ValueError(f"size ({size}) must be a multiple of step ({step})")
        if expires is not None and expires < 0:
            raise ValueError(f"expires must be >= 0, got {expires!r}")
        self.expires = float(expires) if expires else None
        self.per_event = int(self.size // self.step)

    def __repr__(self) -> str:
        return f"HoppingWindows(size={self.size:g}, step={self.step:g}, expires={self.expires})"

    def _first_start(self, t: float) -> float:
        return math.floor(t / self.step) * self.step - self.size + self.step

    def ranges(self, t: float) -> list[Window]:
        """The windows that contain event time ``t``, oldest start first (Faust's ``ranges``).

        >>> [w.start for w in HoppingWindows(60, 20).ranges(20.0)]   # a window opens at its start
        [-20.0, 0.0, 20.0]
        >>> [w.start for w in HoppingWindows(60, 20).ranges(19.999)]  # ...and excludes its end
        [-40.0, -20.0, 0.0]
        """
        first = self._first_start(t)
        return [Window(float(s), float(s) + self.size) for s in range(int(first), int(t) + 1, int(self.step))]

    def current(self, t: float) -> Window:
        """The latest window that contains ``t`` (Faust's ``current``)."""
        first = self._first_start(t)
        start = first + self.step * math.floor((t - first) / self.step)
        return Window(start, start + self.size)

    def expiry_horizon(self, watermark: float) -> float:
        """Windows ending at or before this time are expired (``-inf`` without ``expires``)."""
        if self.expires is None:
            return -math.inf
        return self.current(watermark - self.expires).start

    def expired(self, window: Window, watermark: float) -> bool:
        """Whether ``window`` is closed for good once event time has reached ``watermark``."""
        return window.end <= self.expiry_horizon(watermark)

