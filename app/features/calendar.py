"""Calendar flags of a transaction: during a weekend, during the night.

The Handbook's ``TX_DURING_WEEKEND`` (Saturday or Sunday) and ``TX_DURING_NIGHT`` (hour of day
below 6), both 0.0 or 1.0. The day and hour are those of the event time in **UTC** (the simulator's
clock); data recorded in another time zone gets its flags shifted by that offset. Computed with
integer arithmetic on the epoch seconds (1970-01-01 was a Thursday), no ``datetime`` per event.

>>> calendar_features(1522540800.0)            # 2018-04-01 00:00 UTC, a Sunday
{'TX_DURING_WEEKEND': 1.0, 'TX_DURING_NIGHT': 1.0}
>>> calendar_features(1522540800.0 + 86400 + 6 * 3600)   # Monday 06:00
{'TX_DURING_WEEKEND': 0.0, 'TX_DURING_NIGHT': 0.0}
"""
from __future__ import annotations

import math

__all__ = ["NAMES", "calendar_features"]

NAMES = ("TX_DURING_WEEKEND", "TX_DURING_NIGHT")
DAY_S = 86_400
_EPOCH_WEEKDAY = 3  # Monday = 0: 1970-01-01 was a Thursday


def calendar_features(event_time: float, night_until_hour: int = 6) -> dict[str, float]:
    """``TX_DURING_WEEKEND`` and ``TX_DURING_NIGHT`` (hour < ``night_until_hour``) of
    ``event_time`` (epoch seconds, UTC).

    >>> import datetime as dt
    >>> t = dt.datetime(2018, 9, 1, 5, 59, 59, tzinfo=dt.timezone.utc).timestamp()  # a Saturday
    >>> calendar_features(t), calendar_features(t + 1)
    ({'TX_DURING_WEEKEND': 1.0, 'TX_DURING_NIGHT': 1.0}, {'TX_DURING_WEEKEND': 1.0, 'TX_DURING_NIGHT': 0.0})
    """
    day = math.floor(event_time / DAY_S)
    hour = int((event_time - day * DAY_S) // 3600)
    weekday = (day + _EPOCH_WEEKDAY) % 7
    return {"TX_DURING_WEEKEND": 1.0 if weekday >= 5 else 0.0,
            "TX_DURING_NIGHT": 1.0 if hour < night_until_hour else 0.0}
