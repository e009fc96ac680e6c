"""The garbage collector of a worker process: no long pauses of the event loop.

A grown forest and the libraries a worker imports are a few hundred thousand long-lived objects.
CPython's collection of its oldest generation walks all of them, every time: in a worker it took
50 to 130 ms, an event-loop stall that every waiting transaction feels (the p99 of the score
latency). :func:`freeze` moves every object alive now into the permanent generation, which
collections skip; the objects created later (Faust's events, a tree's new leaves) are collected as
usual. Reference counting still frees a frozen object as soon as nothing refers to it; only
garbage *cycles* among frozen objects would stay (the River models make none: a loop of 40,000
predict-then-learn steps leaves no cyclic garbage).

:func:`set_thresholds` optionally changes how often the young generations are collected
(``gc.set_threshold``; empty keeps Python's).

>>> import gc
>>> young = [object()]  # (a tracked container: a list)
>>> freeze()
>>> any(o is young for o in gc.get_objects())  # out of the generations the collector walks
False
>>> gc.unfreeze()  # (a worker never does this; the test gives its objects back)
>>> old = gc.get_threshold()
>>> set_thresholds([5000, 20, 20]); gc.get_threshold()
(5000, 20, 20)
>>> set_thresholds([]); gc.get_threshold()  # empty: unchanged
(5000, 20, 20)
>>> gc.set_threshold(*old)
"""
from __future__ import annotations

import gc
from typing import Sequence


def set_thresholds(thresholds: Sequence[int | str]) -> None:
    """``gc.set_threshold(*thresholds)`` (one to three ints); nothing if empty."""
    if thresholds:
        gc.set_threshold(*(int(t) for t in thresholds))


def freeze() -> None:
    """Move every object tracked now into the permanent generation.

    Costs microseconds: it relinks lists, it does not walk the objects. (It does not say how many it
    moved: ``gc.get_freeze_count()`` walks the whole permanent generation, 50 ms for four million
    objects, a stall as long as the one freezing avoids.)
    """
    gc.freeze()
