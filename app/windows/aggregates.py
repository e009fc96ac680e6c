"""The aggregate kept per window: count, amount sum and amount max (the mean follows).

An aggregate is a plain ``[count, total, maximum]`` list so that a Faust table can store it as JSON
and Spark can hold it in a column; :func:`add` is the one update rule both use.

>>> state = add(None, 12.5)
>>> state = add(state, 7.5)
>>> state
[2, 20.0, 12.5]
>>> as_features(state, prefix="w0_")
{'w0_count': 2.0, 'w0_amount_sum': 20.0, 'w0_amount_mean': 10.0, 'w0_amount_max': 12.5}
>>> as_features(None, prefix="w1_")  # an empty (or closed) window
{'w1_count': 0.0, 'w1_amount_sum': 0.0, 'w1_amount_mean': 0.0, 'w1_amount_max': 0.0}
"""
from __future__ import annotations

from collections.abc import Sequence

Aggregate = list  # [count: int, total: float, maximum: float]

STATS = ("count", "amount_sum", "amount_mean", "amount_max")


def empty() -> Aggregate:
    """The aggregate of a window without events."""
    return [0, 0.0, 0.0]


def add(state: Sequence | None, amount: float) -> Aggregate:
    """A new aggregate: ``state`` (``None`` or empty = no events yet) plus one transaction of ``amount``.

    The input is not modified, so the result can be written back to a table as a new value.
    """
    amount = float(amount)
    if not state or state[0] == 0:
        return [1, amount, amount]
    count, total, maximum = state
    return [int(count) + 1, float(total) + amount, max(float(maximum), amount)]


def as_features(state: Sequence | None, prefix: str = "") -> dict[str, float]:
    """The aggregate as named features: ``<prefix>count``, ``amount_sum``, ``amount_mean``, ``amount_max``."""
    count, total, maximum = state if state else empty()
    mean = total / count if count else 0.0
    values = (float(count), float(total), float(mean), float(maximum))
    return {prefix + name: value for name, value in zip(STATS, values)}
