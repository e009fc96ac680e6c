"""Poll a condition until it holds: the way tests and fault scenarios wait for a worker or a topic.

>>> wait_until(lambda: True, 1.0, "already true") < 1.0
True
"""
from __future__ import annotations

import time
from typing import Any, Callable


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.2) -> float:
    """Poll ``condition`` until it is true; the seconds it took. Raises ``TimeoutError`` naming ``what``.

    >>> wait_until(lambda: False, 0.0, "never", interval_s=0.0)
    Traceback (most recent call last):
    ...
    TimeoutError: never: not true after 0s
    """
    started = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"{what}: not true after {timeout_s:.0f}s")
        time.sleep(interval_s)
