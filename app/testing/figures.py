"""The last line of every benchmark: its figures as ``key=value`` pairs, easy to compare run by run."""
from __future__ import annotations

import math


def key_values(**figures) -> str:
    """One ``key=value`` line; floats get 4 significant decimals.

    >>> key_values(loop_eps=994.123, ratio=0.8567, runs=3, note="x")
    'loop_eps=994.1 ratio=0.8567 runs=3 note=x'
    >>> key_values(p99_ms=float("nan"))
    'p99_ms=nan'
    """
    def fmt(v):
        if isinstance(v, float):
            if math.isnan(v):
                return "nan"
            return f"{v:.1f}" if abs(v) >= 100 else f"{v:.4g}"
        return str(v)

    return " ".join(f"{k}={fmt(v)}" for k, v in figures.items())
