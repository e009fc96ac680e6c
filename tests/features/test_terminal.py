import json
import random

import pytest

from app.features.panes import pane_of
from app.features.terminal import TerminalWindows, terminal_add_label, terminal_features

DAY = 86_400


def test_features_equal_a_brute_force_over_the_received_labels():
    rng = random.Random(11)
    tw = TerminalWindows(days=(1, 7, 30), delay_s=7 * DAY, hop_s=DAY)
    labels = sorted((rng.uniform(0, 80 * DAY), rng.random() < 0.2) for _ in range(300))
    state, received = None, []
    for tx_time, fraud in labels:
        state = json.loads(json.dumps(tw.add_label(state, tx_time, int(fraud))))
        received.append((tx_time, fraud))
        t = tx_time + rng.uniform(0, 10 * DAY)  # a transaction scored after this label came in
        f = tw.features(state, t)
        end = pane_of(t - 7 * DAY, DAY)
        for k in (1, 7, 30):
            inside = [y for (u, y) in received if end - k + 1 <= pane_of(u, DAY) <= end]
            assert f[f"TERMINAL_ID_NB_TX_{k}DAY_WINDOW"] == len(inside)
            assert f[f"TERMINAL_ID_RISK_{k}DAY_WINDOW"] == pytest.approx(sum(inside) / len(inside) if inside else 0.0)
    assert len(state["panes"]) <= 30 + 7 + 1


def test_a_label_not_received_is_not_counted():
    # the score of a transaction sees only labels added before it: nothing leaks
    state = terminal_add_label(None, tx_event_time=0.0, label=1)
    assert terminal_features(state, 7 * DAY + 1)["TERMINAL_ID_NB_TX_1DAY_WINDOW"] == 1.0
    assert terminal_features(state, 8 * DAY)["TERMINAL_ID_NB_TX_1DAY_WINDOW"] == 0.0
    assert terminal_features(None, 7 * DAY + 1)["TERMINAL_ID_NB_TX_1DAY_WINDOW"] == 0.0
    # a window ending 7 days before: a label of a transaction 6 days before is not in it
    state = terminal_add_label(None, tx_event_time=2 * DAY, label=1)
    assert terminal_features(state, 8 * DAY + 1)["TERMINAL_ID_NB_TX_30DAY_WINDOW"] == 0.0


def test_replayed_offsets_are_not_added_again():
    state = terminal_add_label(None, 0.0, 1, offset=4)
    assert terminal_add_label(state, 0.0, 1, offset=4) is state
    assert terminal_add_label(state, 0.0, 1, offset=5)["panes"] == [[0, 2, 2]]


def test_expired_and_validation():
    tw = TerminalWindows(days=(1,), delay_s=DAY, hop_s=DAY)
    state = tw.add_label(None, 0.0, 0)
    assert not tw.expired(state, 2 * DAY - 1)
    assert tw.expired(state, 2 * DAY)
    with pytest.raises(ValueError):
        TerminalWindows(delay_s=-1)
    with pytest.raises(ValueError):
        TerminalWindows(hop_s=7 * 3600)
