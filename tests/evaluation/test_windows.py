"""evaluation.windows: Card Precision@k on hand examples, the known-compromised rule, the test weeks
and the prequential loop's order (score before the label, learn with the features of the score)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from app.features import TransactionFeatures
from evaluation import windows as ev

DAY = 86_400


def test_card_precision_by_hand():
    # day 0: cards a (0.9, fraud), b (0.8 and 0.1: its max 0.8, genuine), c (0.3, fraud), d (0.2)
    # day 1: a again (fraud, removed: found on day 0), c (0.7, fraud), d (0.6), e (0.5, fraud)
    day = [0, 0, 0, 0, 0, 1, 1, 1, 1]
    card = ["a", "b", "b", "c", "d", "a", "c", "d", "e"]
    y = [1, 0, 0, 1, 0, 1, 1, 0, 1]
    p = [0.9, 0.8, 0.1, 0.3, 0.2, 0.99, 0.7, 0.6, 0.5]
    mean, per_day = ev.card_precision_at_k(day, card, y, p, k=2)
    # day 0: top 2 = a (fraud), b -> 1/2; a detected. day 1: a removed; top 2 = c (fraud), d -> 1/2
    assert per_day == [0.5, 0.5] and mean == 0.5
    mean, per_day = ev.card_precision_at_k(day, card, y, p, k=3)
    # day 0: a, b, c -> 2/3 (a and c detected); day 1: a and c removed: d, e -> 1/3 (over k)
    assert per_day == pytest.approx([2 / 3, 1 / 3])
    _, kept = ev.card_precision_at_k(day, card, y, p, k=2, remove_detected=False)
    assert kept == [0.5, 1.0]  # day 1 without removal: a (0.99, fraud) and c (0.7, fraud)


def test_card_precision_without_days_is_nan():
    mean, per_day = ev.card_precision_at_k([], [], [], [], k=5)
    assert math.isnan(mean) and per_day == []


def test_known_compromised_cards_leave_the_week_they_were_known_before():
    t0 = 1_600_000_000.0 - 1_600_000_000.0 % DAY
    weeks = [(t0 + 14 * DAY, t0 + 21 * DAY)]
    # card a: fraud on day 0, label received day 7: known before the week (day 14) -> left out
    # card b: fraud on day 10, label received day 17: inside the week -> kept
    # card c: genuine only -> kept
    # card d: fraud on day -1, before the Handbook's training week (days 0-6): known for "week" only
    rows = [("d", 1, -1), ("a", 1, 0), ("b", 1, 10), ("a", 0, 15), ("a", 1, 16), ("b", 1, 15), ("c", 0, 15),
            ("c", 0, 16), ("d", 0, 15)]
    scores = ev.Scores(event_time=np.array([t0 + d * DAY for _, _, d in rows]),
                       card=np.array([c for c, _, _ in rows], dtype=object), y=np.array([y for _, y, _ in rows], dtype=np.int8),
                       p=np.array([0.5, 0.1, 0.9, 0.2, 0.3, 0.8, 0.4, 0.05, 0.6]))
    m = ev.evaluate(scores, label_delay=7 * DAY, k=1, weeks=weeks)
    week = m["weeks"][0]
    assert week["left_out"] == 3 and week["transactions"] == 3 and week["frauds"] == 1
    assert week["roc_auc"] == 1.0 and week["ap"] == 1.0  # b (0.8) above c (0.4, 0.05)
    assert m["stream"]["transactions"] == len(rows)
    week = ev.evaluate(scores, label_delay=7 * DAY, k=1, weeks=weeks, known="handbook")["weeks"][0]
    assert week["left_out"] == 2 and week["transactions"] == 4 and week["frauds"] == 1
    with pytest.raises(ValueError):
        ev.evaluate(scores, weeks=weeks, known="all")


def test_weeks_of_test_fall_back_to_the_last_four():
    t0 = 1_522_540_800.0  # 2018-04-01
    handbook = ev.weeks_of_test(t0, t0 + 183 * DAY - 1)
    assert ev.week_label(handbook[0][0]) == "2018-08-08" and handbook[-1][1] - handbook[0][0] == 28 * DAY
    short = ev.weeks_of_test(t0, t0 + 60 * DAY - 1)
    assert short[-1][1] == t0 + 60 * DAY and len(short) == 4


class Recorder:
    def __init__(self):
        self.events = []

    def predict_proba(self, x):
        self.events.append(("predict", dict(x)))
        return 0.5

    def learn(self, x, y):
        self.events.append(("learn", dict(x), y))


def test_prequential_scores_before_the_label_and_learns_the_scored_features():
    rows = [{"event_time": float(i * 3600), "card_id": "c", "terminal_id": "t", "Amount": float(i + 1), "Class": i % 2}
            for i in range(5)]
    rec = Recorder()
    s = ev.prequential(rows, rec, TransactionFeatures(calendar=False), label_delay=2 * 3600)
    kinds = [e[0] for e in rec.events]
    # tx0 tx1 tx2 (label 0 due at 2h: after tx2 at 2h) label0 tx3 label1 tx4 label2 ... label3 label4
    assert kinds == ["predict", "predict", "predict", "learn", "predict", "learn", "predict", "learn", "learn", "learn"]
    predicted = [e[1] for e in rec.events if e[0] == "predict"]
    learned = [(e[1], e[2]) for e in rec.events if e[0] == "learn"]
    assert [x for x, _ in learned] == predicted and [y for _, y in learned] == [0, 1, 0, 1, 0]
    assert predicted[2]["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] == 3.0 and predicted[2]["CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW"] == 2.0
    assert len(s.p) == 5 and s.stats["learned"] == 5
    raw = ev.prequential(rows, Recorder(), None, label_delay=0)
    assert raw.stats == {"learned": 5, "expired": 0}


def test_replay_order_with_a_pending_ttl_as_long_as_the_delay_drops_the_labels_sent_during_the_stream():
    # a transaction every hour and a second, labels 2 h late: the replay sends label i right after transaction i + 2
    rows = [{"event_time": float(i * 3601), "card_id": "c", "terminal_id": "t", "Amount": 1.0, "Class": i % 2}
            for i in range(6)]
    kinds = [(kind, int(row["event_time"] // 3601)) for kind, row in ev.replayed(rows, label_delay=2 * 3600)]
    assert kinds[:6] == [("transaction", 0), ("transaction", 1), ("transaction", 2), ("label", 0), ("transaction", 3),
                         ("label", 1)]
    tf = TransactionFeatures(calendar=False, terminal_days=(1,), terminal_delay_s=0)
    rec = Recorder()
    s = ev.prequential(rows, rec, tf, label_delay=2 * 3600, order="replay", pending_ttl=2 * 3600)
    # labels 0-3 come after a transaction 2 h 2 s later: dropped, and not in the terminal's windows; 4 and 5
    # come after the stream, when the newest transaction is less than 2 h ahead of them
    assert (s.stats["learned"], s.stats["expired"]) == (2, 4)
    assert all(x["TERMINAL_ID_NB_TX_1DAY_WINDOW"] == 0.0 for kind, x, *_ in rec.events if kind == "predict")
    kept = ev.prequential(rows, Recorder(), tf, label_delay=2 * 3600, order="replay", pending_ttl=3 * 3600)
    assert (kept.stats["learned"], kept.stats["expired"]) == (6, 0)
    with pytest.raises(ValueError):
        ev.prequential(rows, Recorder(), tf, order="arrival")
