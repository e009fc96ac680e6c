"""The per-window aggregate and its update."""
from __future__ import annotations

import math
import random

from app.windows import aggregates


def test_add_counts_sums_and_keeps_the_max_without_mutating():
    state = aggregates.add(None, 3.0)
    before = list(state)
    state2 = aggregates.add(state, 10.0)
    assert state == before
    assert aggregates.add(state2, 1.0) == [3, 14.0, 10.0]


def test_empty_list_is_no_events():
    assert aggregates.add([], 4.0) == [1, 4.0, 4.0]
    assert aggregates.add(aggregates.empty(), 0.0) == [1, 0.0, 0.0]


def test_features_match_a_direct_computation():
    rng = random.Random(1)
    amounts = [rng.lognormvariate(3, 1) for _ in range(50)]
    state = None
    for a in amounts:
        state = aggregates.add(state, a)
    f = aggregates.as_features(state, prefix="x_")
    assert f["x_count"] == 50
    assert math.isclose(f["x_amount_sum"], sum(amounts))
    assert math.isclose(f["x_amount_mean"], sum(amounts) / 50)
    assert f["x_amount_max"] == max(amounts)


def test_state_survives_a_json_round_trip():
    import json

    state = aggregates.add(aggregates.add(None, 1.25), 2.5)
    assert aggregates.add(json.loads(json.dumps(state)), 1.0) == aggregates.add(state, 1.0)
