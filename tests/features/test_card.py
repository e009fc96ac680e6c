import json
import random

import pytest

from app.features.card import CardWindows, card_update
from app.features.panes import pane_of

DAY = 86_400


def reference(events, t, days, hop):
    """Count and mean over the events whose pane is within the k-day window ending with t's pane."""
    last = pane_of(t, hop)
    first = last - days * DAY // hop + 1
    amounts = [a for (u, a) in events if first <= pane_of(u, hop) <= last]
    return len(amounts), (sum(amounts) / len(amounts) if amounts else 0.0)


def test_features_equal_a_brute_force_over_a_random_card_history():
    rng = random.Random(7)
    cards = CardWindows(days=(1, 7, 30), hop_s=3600)
    times = sorted(rng.uniform(0, 90 * DAY) for _ in range(400))
    state, seen = None, []
    for offset, t in enumerate(times):
        amount = round(rng.uniform(1, 200), 2)
        seen.append((t, amount))
        state, f = cards.update(state, t, amount, offset)
        state = json.loads(json.dumps(state))  # as a Faust table stores it
        for k in (1, 7, 30):
            n, mean = reference(seen, t, k, 3600)
            assert f[f"CUSTOMER_ID_NB_TX_{k}DAY_WINDOW"] == n
            assert f[f"CUSTOMER_ID_AVG_AMOUNT_{k}DAY_WINDOW"] == pytest.approx(mean, rel=1e-12)
        # retention: nothing older than the 30-day window stays
        assert state["panes"][0][0] >= pane_of(t, 3600) - 30 * 24 + 1


def test_window_is_within_one_hop_of_the_handbook_rolling_window():
    cards = CardWindows(days=(1,), hop_s=3600)
    state = None
    for t in (0.0, 1800.0, 86_400.0 + 1000.0):   # the last one: the exact 1-day window holds only it
        state, f = cards.update(state, t, 1.0)
    # pane-based: panes 1..24 -> the event at 1800 s (pane 0) is out, as in the exact window
    assert f["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] == 1.0
    state, f = cards.update(None, 3700.0, 1.0)
    state, f = cards.update(state, 86_400.0 + 3500.0, 1.0)
    # exact window (t - 1 day, t] holds both; the pane window starts at the pane boundary 3600 s: both
    assert f["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] == 2.0


def test_replayed_offsets_are_not_added_again():
    state, first = card_update(None, 100.0, 5.0, offset=10)
    again, f = card_update(state, 100.0, 5.0, offset=10)
    assert again is state and f == first
    older, _ = card_update(state, 100.0, 5.0, offset=3)
    assert older is state
    newer, f = card_update(state, 200.0, 7.0, offset=11)
    assert newer["offset"] == 11 and f["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] == 2.0
    without, f = card_update(state, 200.0, 7.0)  # no offset: always added, offset kept
    assert without["offset"] == 10 and f["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] == 2.0


def test_expired_when_no_window_can_see_the_state():
    cards = CardWindows(days=(1, 7), hop_s=3600)
    state, _ = cards.update(None, 0.0, 1.0)
    assert not cards.expired(state, 7 * DAY - 1)
    assert cards.expired(state, 7 * DAY)
    assert cards.expired(None, 0.0)


def test_windows_must_be_whole_panes():
    with pytest.raises(ValueError):
        CardWindows(days=(1,), hop_s=7000)
    with pytest.raises(ValueError):
        CardWindows(days=())


def test_amount_ratios_are_the_amount_over_each_window_mean():
    cards = CardWindows(days=(1, 7), hop_s=3600, amount_ratios=True)
    assert cards.names[-2:] == ("CUSTOMER_ID_AMOUNT_OVER_AVG_1DAY_WINDOW", "CUSTOMER_ID_AMOUNT_OVER_AVG_7DAY_WINDOW")
    state, f = cards.update(None, 0.0, 10.0)
    assert f["CUSTOMER_ID_AMOUNT_OVER_AVG_1DAY_WINDOW"] == 1.0  # the window includes the transaction
    state, f = cards.update(state, 2 * DAY, 50.0)
    # 1 day: only this one (mean 50); 7 days: mean (10 + 50) / 2 = 30
    assert f["CUSTOMER_ID_AMOUNT_OVER_AVG_1DAY_WINDOW"] == 1.0
    assert f["CUSTOMER_ID_AMOUNT_OVER_AVG_7DAY_WINDOW"] == pytest.approx(50 / 30, rel=1e-15)
    _, again = cards.update(state, 2 * DAY, 50.0, offset=None)
    assert again["CUSTOMER_ID_NB_TX_7DAY_WINDOW"] == 3.0  # no offset: added again
    _, zero = cards.update(None, 0.0, 0.0)
    assert zero["CUSTOMER_ID_AMOUNT_OVER_AVG_1DAY_WINDOW"] == 0.0  # a zero mean gives 0, not a division error
    with pytest.raises(ValueError):
        cards.features(state, 2 * DAY)  # the ratios need the amount
    assert set(CardWindows(days=(1,)).update(None, 0.0, 5.0)[1]) == {
        "CUSTOMER_ID_NB_TX_1DAY_WINDOW", "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"}  # off by default


def test_amount_ratios_of_a_replayed_offset_use_the_state_as_it_is():
    cards = CardWindows(days=(1,), hop_s=3600, amount_ratios=True)
    state, first = cards.update(None, 100.0, 5.0, offset=1)
    state, second = cards.update(state, 200.0, 15.0, offset=2)
    assert second["CUSTOMER_ID_AMOUNT_OVER_AVG_1DAY_WINDOW"] == 1.5  # 15 over the mean 10
    same, again = cards.update(state, 100.0, 5.0, offset=1)  # read again after a crash
    assert same is state and again["CUSTOMER_ID_AMOUNT_OVER_AVG_1DAY_WINDOW"] == 0.5  # 5 over the mean 10
