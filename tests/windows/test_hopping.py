"""Hopping windows step by step: events at chosen times -> each window's [start, end) contents."""
from __future__ import annotations

import random

import pytest

from app.windows import HoppingWindows, WindowFeatures
from app.windows.base import Window


def contents(wf: WindowFeatures, key: str = "card") -> dict[tuple[float, float], list]:
    """Every live window of ``key`` as {(start, end): [count, sum, max]}."""
    size = wf.windows.size
    return {(start, start + size): agg for (k, start), agg in sorted(wf.state.items()) if k == key}


def test_one_event_opens_every_window_that_contains_it():
    wf = WindowFeatures(size=10, step=5, expires=100)
    wf.update("card", 7.0, 2.0)
    assert contents(wf) == {(0.0, 10.0): [1, 2.0, 2.0], (5.0, 15.0): [1, 2.0, 2.0]}


def test_hop_overlap_step_by_step():
    wf = WindowFeatures(size=10, step=5, expires=100)
    wf.update("card", 2.0, 1.0)   # in [-5, 5), [0, 10)
    assert contents(wf) == {(-5.0, 5.0): [1, 1.0, 1.0], (0.0, 10.0): [1, 1.0, 1.0]}
    wf.update("card", 6.0, 4.0)   # in [0, 10), [5, 15)
    assert contents(wf) == {
        (-5.0, 5.0): [1, 1.0, 1.0],
        (0.0, 10.0): [2, 5.0, 4.0],
        (5.0, 15.0): [1, 4.0, 4.0],
    }
    wf.update("card", 10.0, 3.0)  # a window excludes its end: [0, 10) is untouched
    assert contents(wf) == {
        (-5.0, 5.0): [1, 1.0, 1.0],
        (0.0, 10.0): [2, 5.0, 4.0],
        (5.0, 15.0): [2, 7.0, 4.0],
        (10.0, 20.0): [1, 3.0, 3.0],
    }


def test_features_read_the_windows_of_the_event_including_it():
    wf = WindowFeatures(size=10, step=5, expires=100)
    wf.update("card", 2.0, 1.0)
    f = wf.update("card", 6.0, 4.0)
    # win0 = newest window [5, 15): only this event; win1 = [0, 10): both events
    assert (f["win0_count"], f["win0_amount_sum"]) == (1.0, 4.0)
    assert (f["win1_count"], f["win1_amount_sum"], f["win1_amount_mean"], f["win1_amount_max"]) == (2.0, 5.0, 2.5, 4.0)
    assert f["seconds_since_previous"] == 4.0
    assert list(f) == wf.feature_names


def test_keys_are_separate_and_missing_card_uses_the_global_key():
    wf = WindowFeatures(size=10, step=5, expires=100, global_key="*")
    wf.update("a", 1.0, 1.0)
    wf.update("b", 2.0, 5.0)
    wf.update(None, 3.0, 7.0)
    wf.update("", 4.0, 9.0)
    assert contents(wf, "a") == {(-5.0, 5.0): [1, 1.0, 1.0], (0.0, 10.0): [1, 1.0, 1.0]}
    assert contents(wf, "b") == {(-5.0, 5.0): [1, 5.0, 5.0], (0.0, 10.0): [1, 5.0, 5.0]}
    assert contents(wf, "*") == {(-5.0, 5.0): [2, 16.0, 9.0], (0.0, 10.0): [2, 16.0, 9.0]}
    assert wf.update("a", 4.5, 1.0)["seconds_since_previous"] == 3.5


def test_expiry_drops_windows_once_event_time_passes_end_plus_expires():
    wf = WindowFeatures(size=10, step=5, expires=20)
    wf.update("card", 2.0, 1.0)            # windows [-5, 5) and [0, 10)
    wf.update("other", 24.9, 1.0)          # current(4.9) starts at 0: nothing ends by 0
    assert set(contents(wf)) == {(-5.0, 5.0), (0.0, 10.0)}
    wf.update("other", 25.0, 1.0)          # current(5) starts at 5: [-5, 5) is gone
    assert set(contents(wf)) == {(0.0, 10.0)}
    wf.update("other", 30.0, 1.0)          # current(10) starts at 10: [0, 10) is gone too
    assert contents(wf) == {}


def test_late_event_updates_open_windows_and_skips_expired_ones():
    wf = WindowFeatures(size=10, step=5, expires=20)
    wf.update("card", 2.0, 1.0)
    wf.update("card", 30.0, 1.0)          # watermark 30: windows ending by 10 are closed
    f = wf.update("card", 9.0, 8.0)       # late: in [0, 10) (closed) and [5, 15) (open)
    assert (f["win0_count"], f["win1_count"]) == (1.0, 0.0)  # the closed slot reads as empty
    assert contents(wf) == {(5.0, 15.0): [1, 8.0, 8.0], (25.0, 35.0): [1, 1.0, 1.0], (30.0, 40.0): [1, 1.0, 1.0]}
    assert wf.late_updates_dropped == 1
    assert f["seconds_since_previous"] == 0.0  # earlier than the card's latest time: clipped at 0
    assert wf.update("card", 31.0, 1.0)["seconds_since_previous"] == 1.0  # from the latest, not the late one


def test_late_event_within_expiry_still_counts():
    wf = WindowFeatures(size=10, step=5, expires=100)
    wf.update("card", 12.0, 1.0)
    f = wf.update("card", 8.0, 2.0)  # out of order but nothing has expired
    assert f["win0_count"] == 2.0 and f["win1_count"] == 1.0  # [5, 15) holds both, [0, 10) only this one


def test_gap_is_capped_and_first_event_gets_the_cap():
    wf = WindowFeatures(size=10, step=5, expires=None, gap_cap=60.0)
    assert wf.update("card", 0.0, 1.0)["seconds_since_previous"] == 60.0
    assert wf.update("card", 500.0, 1.0)["seconds_since_previous"] == 60.0
    assert wf.update("card", 510.0, 1.0)["seconds_since_previous"] == 10.0


def test_no_expiry_keeps_every_window():
    wf = WindowFeatures(size=10, step=5, expires=0)
    for t in range(0, 1000, 7):
        wf.update("card", float(t), 1.0)
    assert [start for start, _ in contents(wf)] == [float(s) for s in range(-5, 995, 5)]  # all of them, -5 .. 990


@pytest.mark.parametrize("size,step", [(10, 5), (60, 20), (60, 60), (3600, 600), (7, 1)])
def test_windows_are_the_ones_that_contain_the_time(size, step):
    windows = HoppingWindows(size, step)
    rng = random.Random(size * step)
    for _ in range(500):
        t = rng.uniform(0, 2e9) if rng.random() < 0.5 else round(rng.uniform(0, 1000), rng.choice([0, 1, 3]))
        got = windows.ranges(t)
        assert len(got) == size // step
        assert all(w.start <= t < w.end and w.end - w.start == size for w in got)
        assert all(w.start % step == 0 for w in got)
        assert [w.start for w in got] == sorted(w.start for w in got)
        assert windows.current(t) == got[-1]


@pytest.mark.parametrize("python_version", [True, False])
def test_same_ranges_stale_and_current_as_faust(python_version):
    from faust import windows as faust_windows

    cls = faust_windows._PyHoppingWindow if python_version else faust_windows.HoppingWindow
    for size, step, expires in [(60, 20, 300), (10, 5, 20), (3600, 600, 7200), (30, 30, 60)]:
        ours, theirs = HoppingWindows(size, step, expires), cls(size, step, expires)
        rng = random.Random(step)
        for _ in range(300):
            t = rng.choice([rng.uniform(0, 1e4), rng.uniform(1.6e9, 1.8e9), float(rng.randrange(0, 10_000))])
            assert [w.faust_range() for w in ours.ranges(t)] == [tuple(r) for r in theirs.ranges(t)]
            assert ours.current(t).faust_range() == tuple(theirs.current(t))
            latest = t + rng.uniform(0, 3 * expires)
            for w in ours.ranges(t):
                assert ours.expired(w, latest) == theirs.stale(w.faust_range()[1], latest)


@pytest.mark.parametrize("size,step", [(10, 3), (2.5, 0.5), (10, 20), (0, 1)])
def test_sizes_faust_cannot_window_are_refused(size, step):
    with pytest.raises(ValueError):
        HoppingWindows(size, step)


def test_window_contains_its_start_not_its_end():
    w = Window(0.0, 10.0)
    assert 0.0 in w and 9.999 in w and 10.0 not in w and -0.001 not in w
