"""The score and error streams wait for their model to settle: a fresh model on a stationary stream
raises at most one alert per 100,000 events, and a change after it has settled is still found fast."""
from __future__ import annotations

import math
import random

import settings
from app import configured
from app.data.synthetic import generate
from app.drift.detectors import SETTLE_EVENTS, score_monitor, service_streams


def learning_scores(n: int, seed: int = 0):
    """A learning model's (events learned, score): falling from its prior, lifted for a while after
    it learns a fraud (at 600 and 3,800 events), as a fresh model's scores move."""
    rng = random.Random(seed)
    for i in range(n):
        base = 0.3 * math.exp(-i / 700) + 0.01
        bump = sum(0.04 * math.exp(-(i - b) / 1500) for b in (600, 3800) if i >= b)
        yield i, min(1.0, max(0.0, base + bump + rng.gauss(0, 0.01)))


def test_a_learning_models_bump_alerts_unless_the_stream_waits_for_it_to_settle():
    eager, settled = score_monitor(settle=0), score_monitor()
    assert [d.stream for i, p in learning_scores(30000) if (d := eager.update("score", p, i))] == ["score"]
    assert not any(settled.update("score", p, i) for i, p in learning_scores(30000))
    assert settled.waiting == SETTLE_EVENTS and settled.count("score") == 30000


def test_a_rise_of_a_settled_models_scores_is_found_within_300_scores():
    rng = random.Random(4)
    monitor = score_monitor()
    change = 30000
    found = [d for i in range(40000)
             if (d := monitor.update("score", min(1.0, max(0.0, rng.gauss(0.01 if i < change else 0.05, 0.02))), i))]
    assert len(found) == 1 and 0 < found[0].position - change <= 300
    assert found[0].mean_before < found[0].mean_after  # early: the recent window still mixes in old scores


def test_without_learned_counts_the_streams_own_count_is_the_clock():
    monitor = score_monitor(settle=100)
    for _ in range(150):
        monitor.update("error", 0.0)
    assert monitor.waiting == 100 and monitor.width("error") == 50


def run_fresh(rows, kind: str = "lr"):
    """A fresh model of ``kind`` test-then-train over ``rows``, watched by the monitors the settings
    configure; the (event, stream) of each alert."""
    model = configured.model_factory(settings, kind=kind)()
    features, outputs = configured.feature_monitor(settings), configured.score_monitor(settings)
    streams = configured.service_streams(settings)
    alerts, learned = [], 0
    for position, row in enumerate(rows, start=1):
        y = int(row.pop("Class"))
        row.pop("Time")
        p = model.predict_proba_one(row).get(1, 0.0)
        for name, value in streams(row, p, y, settings.DECISION_THRESHOLD):
            if name.startswith("feature:"):
                found = features.update(name, value)
            else:
                found = outputs.update(name, value, learned)
            if found is not None and found.kind == "drift":
                alerts.append((position, name))
        model.learn_one(row, y)
        learned += 1
    return alerts


def test_a_fresh_model_on_100k_stationary_events_raises_at_most_one_alert():
    alerts = run_fresh(generate(100_000, seed=3, include_ids=False))
    assert len(alerts) <= 1, alerts


def test_a_fresh_workers_monitors_find_a_real_change_within_100_events():
    change = 30_000  # the concept moves the fraud signature and both Amount medians
    alerts = run_fresh(generate(40_000, seed=3, include_ids=False, drift_at=[change]))
    assert alerts and 0 < alerts[0][0] - change <= 100, alerts
