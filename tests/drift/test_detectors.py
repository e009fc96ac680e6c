from app.drift.detectors import FEATURES, feature_monitor, score_monitor, service_streams


def test_service_streams_follow_the_parameters():
    x = {"Amount": 10.0, "V1": -2.0, "V2": 1.0}
    streams = ["Amount", "V1"]
    assert list(service_streams(x, 0.7, 0, 0.5, features=streams, monitor_scores=True)) == [
        ("feature:Amount", 10.0), ("feature:V1", -2.0), ("score", 0.7), ("error", 1.0)]
    assert [n for n, _ in service_streams(x, 0.7, None, 0.5, features=streams)] == ["feature:Amount", "feature:V1",
                                                                                     "score"]
    assert [n for n, _ in service_streams({"V2": 1.0}, 0.7, 1, 0.5, features=streams, monitor_scores=False)] == []


def test_defaults_watch_amount_and_the_first_components_and_scores():
    x = {"Amount": 1.0, "V1": 1.0, "V2": 1.0, "V3": 1.0, "V4": 1.0}
    assert [n for n, _ in service_streams(x, 0.7, 1, 0.5)] == [f"feature:{f}" for f in FEATURES] + ["score", "error"]
    assert [n for n, _ in service_streams(x, 0.7, 1, 0.5, features=None, monitor_scores=None)] == [
        n for n, _ in service_streams(x, 0.7, 1, 0.5)]
    assert feature_monitor().detector == "ADWIN(delta=0.002,clock=32) on log1p_abs"


def test_feature_monitor_sees_a_change_of_spread_of_a_centred_column():
    import random

    rng = random.Random(3)
    monitor = feature_monitor(features=["V1"], transform="log1p_abs", delta=0.002, clock=32)
    found = [monitor.update("feature:V1", rng.gauss(0, 2.0 if i < 3000 else 0.7)) for i in range(6000)]
    alarms = [d for d in found if d]
    assert len(alarms) == 1 and 3000 < alarms[0].position < 3300
    assert alarms[0].mean_after < alarms[0].mean_before


def test_score_monitor_reports_rises_only_by_default():
    falling, rising = score_monitor(delta=0.002, clock=32, settle=0), score_monitor(delta=0.002, clock=32, settle=0)
    down = [falling.update("score", 0.5 if i < 2000 else 0.05) for i in range(4000)]
    up = [rising.update("score", 0.05 if i < 2000 else 0.5) for i in range(4000)]
    assert not any(down) and falling.suppressed >= 1
    assert [d.stream for d in up if d] == ["score"]
