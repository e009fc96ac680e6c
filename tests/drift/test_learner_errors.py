"""The central learner's error watch: ADWIN over 0/1 errors, alerts of the record the drift agents
publish, a state that a restore continues exactly."""
from __future__ import annotations

import random

import pytest

from app.drift.detectors import error_monitor
from app.drift.learner_errors import CENTRAL, LearnerErrorWatch
from app.learning.learner import CheckpointError
from app.records import DriftAlert


def errors(n: int, rates: list[tuple[int, float]], seed: int = 5) -> list[bool]:
    """``n`` errors drawn at ``rate`` from each ``(start, rate)`` on."""
    rng = random.Random(seed)
    return [rng.random() < [rate for start, rate in rates if start <= i][-1] for i in range(n)]


def feed(watch: LearnerErrorWatch, values: list[bool], first: int = 0, alerting: bool = True) -> list[DriftAlert]:
    out = []
    for i, wrong in enumerate(values, start=first):
        found = watch.observe(wrong, learned=i, event_time=1.7e9 + i, transaction_id=f"tx-{i}", offset=i,
                              model_version=f"lr-g0@{i}", alerting=alerting)
        if found is not None:
            out.append(found)
    return out


def new_watch(settle: int = 0, delta: float = 0.002) -> LearnerErrorWatch:
    return LearnerErrorWatch(lambda: error_monitor(delta=delta, clock=32, settle=settle))


def test_a_jump_of_the_error_rate_alerts_and_a_steady_rate_does_not():
    jump = feed(new_watch(), errors(6000, [(0, 0.03), (3000, 0.15)]))
    assert len(jump) == 1 and 3000 < jump[0].position < 3300
    assert feed(new_watch(), errors(6000, [(0, 0.03)])) == []


def test_a_fall_of_the_error_rate_does_not_alert():
    assert feed(new_watch(), errors(6000, [(0, 0.15), (3000, 0.03)])) == []


def test_the_alert_is_the_drift_agents_record_marked_as_the_central_learners():
    alert, = feed(new_watch(), errors(6000, [(0, 0.03), (3000, 0.15)]))
    assert isinstance(alert, DriftAlert)
    assert (alert.stream, alert.partition, alert.mitigation) == ("error", CENTRAL, "none")
    assert alert.detector == "ADWIN(delta=0.002,clock=32)"
    assert alert.offset == alert.position - 1 and alert.transaction_id == f"tx-{alert.offset}"
    assert alert.model_version == f"lr-g0@{alert.offset}" and alert.event_time == 1.7e9 + alert.offset
    assert alert.mean_before < 0.04 < alert.mean_after  # ADWIN cuts early: W1 still holds some 3% values
    assert alert.description.startswith("the error rate (wrong decisions) rose from ")
    assert alert.description.endswith(f"over the last {alert.width:,} examples of the central learner")
    DriftAlert.from_data(alert.asdict())  # what the agents serialize


def test_values_of_an_unsettled_model_wait():
    watch = new_watch(settle=1000)
    assert feed(watch, [True] * 500 + [False] * 500) == []
    report = watch.report()
    assert (report["values"], report["waiting"], report["width"]) == (1000, 1000, 0)


def test_not_alerting_feeds_the_window_and_gives_nothing():
    values = errors(6000, [(0, 0.03), (3000, 0.15)])
    quiet = new_watch()
    assert feed(quiet, values, alerting=False) == [] and quiet.latest is None
    loud = new_watch()
    feed(loud, values)
    assert quiet.report()["width"] == loud.report()["width"] and quiet.report()["values"] == 6000


def test_a_restored_watch_goes_on_as_the_saved_one():
    values = errors(8000, [(0, 0.03), (5000, 0.15)])
    whole = feed(new_watch(), values)
    saved = new_watch()
    feed(saved, values[:4000])
    restored = new_watch().restore(saved.to_checkpoint())
    after = feed(restored, values[4000:], first=4000)
    assert [(a.position, a.mean_after) for a in after] == [(a.position, a.mean_after) for a in whole]
    assert len(whole) == 1
    fresh = feed(new_watch(), values[4000:], first=4000)  # a window from 4,000 on counts from there
    assert [a.position for a in fresh] != [a.position for a in whole]


def test_a_window_of_other_adwin_settings_is_refused():
    saved = new_watch()
    feed(saved, errors(100, [(0, 0.1)]))
    with pytest.raises(CheckpointError):
        new_watch(delta=0.01).restore(saved.to_checkpoint())
