"""Sparse panes: the state behind hopping windows, one update per event.

A hopping window of size ``S`` every ``H`` seconds, written naively, updates ``S / H`` windows per
event (and in a changelog-backed table, each update is a changelog record). Panes avoid that: event
time is cut into panes of width ``H`` (pane ``i`` holds ``[i * H, (i + 1) * H)``), an event adds its
values to its own pane only, and a window of ``n`` panes is the sum of those panes, computed when it
is read. One state update per key per event, whatever the windows read from it.

The state of one key is a plain list of ``[pane_index, v0, v1, ...]`` lists, ascending by pane and
holding only panes that received something (sparse): a Faust table stores it as JSON and a Spark
job holds it as it is. Every function here returns a new list and leaves its argument unchanged,
so a state read from a table is never changed in place.

Which hop (see :mod:`app.features.card` and :mod:`app.features.terminal` for the defaults): a
window built from panes starts on a pane boundary, so it covers between ``S - H`` and ``S`` seconds
before the pane its reader falls in; a finer hop is closer to a window ending exactly at the event,
and costs at most one more pane per hop in which the key had events (the state stays sparse: a key
with a few events a day keeps a few panes a day whatever the hop).

>>> panes = []
>>> panes = add(panes, pane_of(7_200.0, 3_600), (1, 10.0))   # pane 2
>>> panes = add(panes, pane_of(7_300.0, 3_600), (1, 5.5))    # pane 2 again
>>> panes = add(panes, pane_of(90_000.0, 3_600), (1, 1.0))   # pane 25
>>> panes
[[2, 2, 15.5], [25, 1, 1.0]]
>>> window_sum(panes, first=2, last=25, width=2)
(3, 16.5)
>>> window_sum(panes, first=3, last=25, width=2)
(1, 1.0)
>>> drop_before(panes, 3)
[[25, 1, 1.0]]
"""
from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence

__all__ = ["add", "drop_before", "pane_of", "panes_in", "window_sum"]

Panes = list  # list[list]: [[pane_index, v0, v1, ...], ...], ascending by pane_index


def pane_of(t: float, hop: int) -> int:
    """The pane of event time ``t`` (seconds) for panes ``hop`` seconds wide: ``floor(t / hop)``.

    >>> pane_of(3_599.9, 3_600), pane_of(3_600.0, 3_600), pane_of(-0.5, 3_600)
    (0, 1, -1)
    """
    return math.floor(t / hop)


def panes_in(seconds: float, hop: int) -> int:
    """How many panes of ``hop`` seconds make a window of ``seconds``; ``ValueError`` unless whole.

    >>> panes_in(86_400, 3_600)
    24
    >>> panes_in(86_400, 7_000)
    Traceback (most recent call last):
    ...
    ValueError: a window of 86400 s is not a whole number of 7000 s panes
    """
    if hop <= 0 or seconds <= 0 or seconds % hop:
        raise ValueError(f"a window of {seconds:g} s is not a whole number of {hop:g} s panes")
    return int(seconds // hop)


def _position(panes: Panes, index: int) -> int:
    """Where pane ``index`` is or would go (panes are ascending; the last one is the usual answer)."""
    if not panes or panes[-1][0] < index:
        return len(panes)
    return bisect_left(panes, [index])  # [i] sorts before [i, v0, ...] and after [i - 1, ...]: pane order


def add(panes: Panes, index: int, values: Sequence[float]) -> Panes:
    """``panes`` with ``values`` added to pane ``index`` (created when absent); a new list."""
    at = _position(panes, index)
    out = list(panes)
    if at < len(panes) and panes[at][0] == index:
        old = panes[at]
        out[at] = [index, *(a + b for a, b in zip(old[1:], values))]
    else:
        out.insert(at, [index, *values])
    return out


def window_sum(panes: Panes, first: int, last: int, width: int) -> tuple:
    """The sums of the ``width`` values over panes ``first`` to ``last`` (both included); zeros when
    none is there. The sums run in pane order, so the same panes always give the same floats."""
    at = _position(panes, first)
    if width == 2:  # the card and terminal windows' (count, total): the same sums, without the inner loop
        a = b = 0
        for pane in panes[at:]:
            if pane[0] > last:
                break
            a += pane[1]
            b += pane[2]
        return a, b
    sums = [0] * width
    for pane in panes[at:]:
        if pane[0] > last:
            break
        for k in range(width):
            sums[k] += pane[k + 1]
    return tuple(sums)


def drop_before(panes: Panes, first: int) -> Panes:
    """``panes`` without those before pane ``first`` (retention); the same list when none is."""
    at = _position(panes, first)
    return panes[at:] if at else panes
