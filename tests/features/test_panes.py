import json
import random

import pytest

from app.features import panes as P


def brute_sum(events, hop, first, last):
    n = s = 0
    for t, v in events:
        if first <= P.pane_of(t, hop) <= last:
            n += 1
            s += v
    return n, s


def test_sums_equal_brute_force_for_events_in_any_order():
    rng = random.Random(3)
    events = [(rng.uniform(0, 50_000), rng.choice([1.0, 2.5, 10.0])) for _ in range(300)]
    panes = []
    for t, v in events:
        panes = P.add(panes, P.pane_of(t, 3600), (1, v))
    assert [p[0] for p in panes] == sorted({P.pane_of(t, 3600) for t, _ in events})
    for first, last in [(0, 13), (2, 5), (7, 7), (20, 30), (-3, -1)]:
        n, s = P.window_sum(panes, first, last, 2)
        bn, bs = brute_sum(events, 3600, first, last)
        assert n == bn
        assert s == pytest.approx(bs)


def test_add_does_not_change_its_argument():
    panes = [[1, 1, 2.0]]
    new = P.add(panes, 1, (1, 3.0))
    assert panes == [[1, 1, 2.0]] and new == [[1, 2, 5.0]]
    new = P.add(panes, 0, (1, 1.0))
    assert panes == [[1, 1, 2.0]] and new == [[0, 1, 1.0], [1, 1, 2.0]]


def test_drop_before_keeps_the_panes_from_first_on():
    panes = [[1, 1, 1.0], [4, 1, 1.0], [9, 2, 2.0]]
    assert P.drop_before(panes, 4) == [[4, 1, 1.0], [9, 2, 2.0]]
    assert P.drop_before(panes, 10) == []
    assert P.drop_before(panes, 0) is panes


def test_state_survives_json():
    panes = P.add(P.add([], 5, (1, 0.1)), 7, (1, 0.2))
    again = json.loads(json.dumps(panes))
    assert again == panes
    assert P.window_sum(again, 0, 10, 2) == P.window_sum(panes, 0, 10, 2)


def test_windows_must_be_whole_panes():
    assert P.panes_in(7 * 86400, 86400) == 7
    with pytest.raises(ValueError):
        P.panes_in(86400, 0)
    with pytest.raises(ValueError):
        P.panes_in(5000, 3600)


def test_two_value_sums_are_the_general_sums_bit_for_bit():
    rng = random.Random(5)
    panes3, panes2 = [], []
    for _ in range(200):
        t, v = rng.uniform(0, 80_000), rng.uniform(0, 300)
        panes3 = P.add(panes3, P.pane_of(t, 3600), (1, v, 0.5))
        panes2 = P.add(panes2, P.pane_of(t, 3600), (1, v))
    for first, last in [(0, 22), (3, 9), (10, 10), (15, 40), (-2, 0)]:
        assert P.window_sum(panes2, first, last, 2) == P.window_sum(panes3, first, last, 3)[:2]
