"""Fixed and rolling-quantile thresholds."""
from __future__ import annotations

import math

import numpy as np
import pytest

from app.anomaly import FixedThreshold, RollingQuantileThreshold, make_threshold


def test_fixed_threshold_ignores_scores():
    t = FixedThreshold(0.6)
    for s in (0.1, 0.99, 0.5):
        t.update(s)
    assert t.value() == 0.6 and t.kind == "fixed"


def test_rolling_quantile_follows_recent_scores_only():
    t = RollingQuantileThreshold(q=0.9, window=1000)
    assert t.value() == math.inf  # before any score nothing can pass
    rng = np.random.default_rng(0)
    low = rng.uniform(0.0, 0.5, 1000)
    for s in low:
        t.update(float(s))
    assert t.value() == pytest.approx(np.quantile(low, 0.9), abs=0.01)
    for s in rng.uniform(0.5, 1.0, 1000):  # the window has fully moved on
        t.update(float(s))
    assert 0.9 < t.value() < 1.0


def test_make_threshold_takes_the_parameters_of_its_kind():
    assert make_threshold("fixed", value=0.75, q=0.5, window=3).value() == 0.75
    t = make_threshold("quantile", value=0.75, q=0.9, window=500)
    assert (t.kind, t.q, t.window) == ("quantile", 0.9, 500)
    t = make_threshold()
    assert (t.kind, t.q, t.window) == ("quantile", 0.995, 10_000)
    with pytest.raises(ValueError):
        make_threshold("median")
    with pytest.raises(ValueError):
        RollingQuantileThreshold(q=1.5, window=10)
