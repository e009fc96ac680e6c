import itertools
import random

from evaluation.drift import (Stream, card_stream, monitor_values, prequential, river_stream, score_detections,
                              summary_line)

SERVICE = {"features": ["Amount", "V1", "V2", "V3"], "monitor_scores": True}


def test_scoring_rules():
    s = score_detections([5, 1020, 1040, 2500, 9000], [1000, 2000], n_events=10000, tolerance=600)
    assert (s.true_alarms, s.repeats, s.false_alarms, s.missed, s.delays) == (2, 1, 2, 0, [20, 500])
    assert s.mean_delay == 260 and s.false_alarms_per_100k == 20
    assert score_detections([], [100], 1000, 50).missed == 1
    assert score_detections([1000], [100], 1000, 50).false_alarms == 1  # too late


def test_abrupt_river_stream_changes_at_its_change_point():
    stream = river_stream("a", "agrawal", 0, 2, 3000, 2000, seed=4)
    assert stream.change_points == [1999] and stream.kind == "abrupt"
    same = river_stream("s", "agrawal", 0, None, 3000, 0, seed=4)
    a, b = list(stream.pairs()), list(same.pairs())
    assert len(a) == 3000 and a[:1900] == b[:1900]  # identical source before the change
    # after the change labels follow function 2, not 0: many disagree
    assert sum(ya != yb for (_, ya), (_, yb) in zip(a[2000:], b[2000:])) > 100


def test_amount_shift_of_the_card_stream_is_detected_fast_and_stationary_is_quiet():
    drift = card_stream("c", 8000, [4000], seed=2)
    score, detections = monitor_values((x["Amount"] for x, _ in drift.pairs()), drift.change_points, 1000,
                                       delta=0.002, clock=32)
    assert score.true_alarms == 1 and score.false_alarms == 0 and score.delays[0] < 500
    assert detections[0].mean_after > detections[0].mean_before  # legit median 20 -> 45
    quiet = card_stream("q", 8000, seed=2)
    score, _ = monitor_values((x["Amount"] for x, _ in quiet.pairs()), [], 1000, delta=0.002, clock=32)
    assert score.false_alarms == 0


def test_prequential_detects_a_concept_drift_and_reset_recovers():
    stream = river_stream("a", "agrawal", 0, 2, 14000, 7000, seed=1)
    # the score and error streams watched from 2,000 learned events: before the change
    none = prequential(stream, "none", delta=0.002, clock=32, after=7000, settle=2000)
    reset = prequential(stream, "reset", delta=0.002, clock=32, after=7000, settle=2000)
    assert none.score.true_alarms == 1 and none.score.delays[0] < 1000
    assert reset.actions and reset.actions[0][1] == "reset"
    assert reset.pr_auc_after > none.pr_auc_after


def test_summary_line_is_one_line_of_pairs():
    line = summary_line({"mean_delay": 12.5, "missed": 0, "false_alarms_per_100k": 0.0}, "reset")
    assert "\n" not in line and dict(p.split("=") for p in line.split())["mean_delay"] == "12.5"


def test_a_concept_change_is_scored_on_every_stream_the_service_watches(monkeypatch):
    import settings

    monkeypatch.setattr(settings, "DRIFT_FEATURE_TRANSFORM", "log1p_abs")
    monkeypatch.setattr(settings, "DRIFT_SCORE_DIRECTION", "increase")
    stream = card_stream("c", 12000, [6000], seed=2)  # the fraud signature and both Amount medians move
    result = prequential(stream, "none", delta=0.002, clock=32, after=6000, **SERVICE)
    assert set(result.by_stream) == {"feature:Amount", "feature:V1", "feature:V2", "feature:V3", "score", "error"}
    assert result.by_stream["error"].missed == 1  # 0.17 % fraud: too quiet an error stream
    assert result.by_stream["feature:Amount"].true_alarms == 1
    assert result.score.true_alarms == 1 and result.score.delays == result.by_stream["feature:Amount"].delays
    assert result.score.false_alarms == sum(s.false_alarms for s in result.by_stream.values())


def _scaled_v1(n, change, factor, seed):
    def make():
        rng = random.Random(seed)
        for i in itertools.count():
            x = {f"V{k}": rng.gauss(0, 1) for k in range(1, 4)}
            x["Amount"] = rng.lognormvariate(3, 1)
            if i >= change:
                x["V1"] *= factor
            yield x, int(rng.random() < 0.01)

    return Stream("v1", "abrupt", [change], make, n, learner="logreg")


def test_a_change_of_spread_of_a_v_column_is_detected_and_a_learning_model_raises_no_score_alarm(monkeypatch):
    import settings

    monkeypatch.setattr(settings, "DRIFT_FEATURE_TRANSFORM", "log1p_abs")
    monkeypatch.setattr(settings, "DRIFT_SCORE_DIRECTION", "increase")
    result = prequential(_scaled_v1(8000, 4000, 0.3, seed=5), "none", delta=0.002, clock=32, after=4000, **SERVICE)
    assert result.by_stream["feature:V1"].true_alarms == 1 and result.by_stream["feature:V1"].delays[0] < 300
    assert result.score.missed == 0 and result.score.delays[0] < 300
    quiet = prequential(card_stream("q", 20000, seed=3), "none", delta=0.002, clock=32, **SERVICE)
    assert quiet.score.false_alarms == 0  # the cold model's scores fall while it learns: not reported
