import pytest

from app.drift import fresh_copy, make_mitigation
from evaluation.drift import make_learner


class Counting:
    def __init__(self):
        self.reset()

    def reset(self):
        self.learned = []

    def learn(self, x, y):
        self.learned.append(y)

    def predict_proba(self, x):
        return sum(self.learned) / len(self.learned) if self.learned else 0.5


def test_none_leaves_the_learner_alone():
    live = Counting()
    live.learn({}, 1)
    outcome = make_mitigation("none").on_drift(0, live)
    assert (outcome.action, outcome.learner, live.learned) == ("none", live, [1])


def test_reset_forgets_in_place():
    live = Counting()
    live.learn({}, 1)
    outcome = make_mitigation("reset").on_drift(3, live)
    assert outcome.action == "reset" and outcome.learner is live and live.learned == []


def test_challenger_learns_only_after_the_warning_and_is_promoted():
    live, policy = Counting(), make_mitigation("challenger", min_events=3)
    policy.observe(0, {}, 1)  # no challenger yet: ignored
    assert policy.on_warning(0, live)
    for y in (0, 1, 1):
        policy.observe(0, {}, y)
    policy.observe(1, {}, 1)  # another partition
    assert policy.challenger_events(0) == 3 and policy.challenger_events(1) == 0
    outcome = policy.on_drift(0, live)
    assert outcome.action == "challenger" and outcome.learner is not live
    assert outcome.learner.learned == [0, 1, 1]
    assert policy.challenger_events(0) == 0  # promoted, gone


def test_young_or_missing_challenger_falls_back_to_reset():
    live, policy = Counting(), make_mitigation("challenger", min_events=10)
    live.learn({}, 1)
    assert policy.on_drift(0, live).action == "reset" and live.learned == []
    policy.on_warning(0, live)
    policy.observe(0, {}, 1)
    assert policy.on_drift(0, live).action == "reset"


def test_a_warning_restarts_only_a_stale_challenger():
    live, policy = Counting(), make_mitigation("challenger", min_events=1, max_age=2)
    assert policy.on_warning(0, live)
    policy.observe(0, {}, 1)
    assert not policy.on_warning(0, live)  # young: kept
    policy.observe(0, {}, 1)
    policy.observe(0, {}, 1)
    assert policy.on_warning(0, live)  # older than max_age: restarted
    assert policy.challenger_events(0) == 0


def test_fresh_copy_of_a_river_learner_is_untrained():
    learner = make_learner("logreg")
    for i in range(50):
        learner.learn({"a": float(i % 2)}, i % 2)
    clone = fresh_copy(learner)
    assert clone.events_learned == 0 and learner.events_learned == 50
    assert clone.predict_proba({"a": 1.0}) == pytest.approx(0.5)


def test_unknown_policy():
    with pytest.raises(ValueError):
        make_mitigation("retrain")


def test_after_a_checkpoint_the_slot_goes_on_with_a_challenger_laid_out_as_new_objects():
    from app.drift import ChallengerSlot
    from app.learning import OnlineLearner, layout, model_factory
    from tests.learning.test_pipeline import stream

    checkpointed, uninterrupted = ChallengerSlot(), ChallengerSlot()
    checkpointed.start(OnlineLearner(model_factory(kind="arf", trees=2)))
    uninterrupted.start(OnlineLearner(model_factory(kind="arf", trees=2)))
    rows = list(stream(800))
    for x, y in rows[:500]:
        checkpointed.learn(x, y)
        uninterrupted.learn(x, y)
    new = len(layout.instances_with_dict(uninterrupted.learner, "river"))
    checkpointed.to_checkpoint()
    assert len(layout.instances_with_dict(checkpointed.learner, "river")) <= new
    for x, y in rows[500:]:
        assert checkpointed.learner.predict_proba(x) == uninterrupted.learner.predict_proba(x)
        checkpointed.learn(x, y)
        uninterrupted.learn(x, y)
