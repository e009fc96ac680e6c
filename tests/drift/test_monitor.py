import math
import pickle
import random

import pytest

from app.drift import DriftMonitor, make_transform
from app.learning import layout


def _stream(rng, n, mean, sd=1.0):
    return [rng.gauss(mean, sd) for _ in range(n)]


def test_detects_an_abrupt_shift_quickly_and_estimates_it():
    rng = random.Random(1)
    monitor = DriftMonitor(delta=0.002, clock=32)
    found = [d for d in (monitor.update("x", v) for v in _stream(rng, 5000, 0.0) + _stream(rng, 5000, 1.0)) if d]
    assert len(found) == 1
    d = found[0]
    assert 5000 < d.position <= 5000 + 300
    assert abs(d.mean_before) < 0.1  # W0 was all old values
    assert d.mean_before < d.mean_after <= 1.2
    assert 0 < d.width < d.position


def test_no_alarm_on_a_stationary_log_amount_stream():
    rng = random.Random(2)
    monitor = DriftMonitor(delta=0.002, clock=32, transforms={"amount": make_transform("log1p")})
    amounts = [math.exp(math.log(20) + rng.gauss(0, 1)) for _ in range(50000)]
    assert not any(monitor.update("amount", a) for a in amounts)


def test_streams_are_independent_and_counted():
    monitor = DriftMonitor(delta=0.002, clock=32)
    for _ in range(100):
        monitor.update("a", 0.0)
    monitor.update("b", 1.0)
    assert (monitor.count("a"), monitor.count("b"), sorted(monitor.streams())) == (100, 1, ["a", "b"])
    monitor.reset("a")
    assert monitor.count("a") == 0 and monitor.count("b") == 1


def test_increase_only_suppresses_improvements():
    errors = [1.0 if i % 2 else 0.0 for i in range(3000)] + [0.0] * 3000  # error falls from 0.5 to 0
    monitor = DriftMonitor(delta=0.002, clock=32, directions={"error": "increase"})
    assert not any(monitor.update("error", e) for e in errors)
    assert monitor.suppressed >= 1
    both = DriftMonitor(delta=0.002, clock=32)
    assert any(both.update("error", e) for e in errors)


def test_warning_detector_fires_no_later_than_the_drift():
    rng = random.Random(3)
    values = [float(rng.random() < 0.1) for _ in range(5000)] + [float(rng.random() < 0.3) for _ in range(5000)]
    monitor = DriftMonitor(delta=0.002, clock=32, warning_delta=0.1, directions={"e": "increase"})
    kinds = [(d.kind, d.position) for d in (monitor.update("e", v) for v in values) if d]
    first_warning = min(p for k, p in kinds if k == "warning") if any(k == "warning" for k, _ in kinds) else None
    first_drift = min(p for k, p in kinds if k == "drift")
    assert first_drift > 5000
    assert first_warning is None or first_warning <= first_drift


def test_defaults_are_adwins_own_and_none_takes_them():
    assert DriftMonitor().detector == "ADWIN(delta=0.002,clock=32)"
    assert DriftMonitor(None, None).detector == "ADWIN(delta=0.002,clock=32)"
    assert DriftMonitor(delta=0.01, clock=8).detector == "ADWIN(delta=0.01,clock=8)"


@pytest.mark.parametrize("kwargs", [{"delta": 0.0}, {"delta": 1.5}, {"clock": 0},
                                    {"delta": 0.01, "warning_delta": 0.001}, {"directions": {"x": "up"}}])
def test_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        DriftMonitor(**kwargs)


def test_transforms():
    assert make_transform("log1p")(-1.0) == -make_transform("log1p")(1.0)
    assert make_transform("clip:-1:1")(-5) == -1.0
    with pytest.raises(ValueError):
        make_transform("sqrt")
    with pytest.raises(ValueError):
        make_transform("clip:2:1")


def test_after_a_checkpoint_the_monitor_goes_on_with_detectors_laid_out_as_new_ones():
    rng = random.Random(3)
    values = _stream(rng, 3000, 0.0) + _stream(rng, 3000, 1.0)
    checkpointed, uninterrupted = DriftMonitor(delta=0.002, clock=32), DriftMonitor(delta=0.002, clock=32)
    for v in values[:2000]:
        checkpointed.update("x", v)
        uninterrupted.update("x", v)
    new = len(layout.instances_with_dict(uninterrupted, "river"))
    checkpointed.to_checkpoint()
    assert len(layout.instances_with_dict(checkpointed, "river")) <= new
    assert len(layout.instances_with_dict(pickle.loads(pickle.dumps(uninterrupted)), "river")) > new
    assert [checkpointed.update("x", v) for v in values[2000:]] == [uninterrupted.update("x", v) for v in values[2000:]]
