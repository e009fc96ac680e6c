"""A hosted learner under drift mitigation: a reset and a promoted challenger reach the host's model."""
from __future__ import annotations

import asyncio

from app.drift.mitigation import make_mitigation
from app.learning.hosted_learner import HostedLearner
from app.learning.model_host import LocalHost
from app.learning.pipeline import model_factory


def test_a_challenger_of_a_hosted_learner_is_trained_here_and_promoted_into_the_host():
    async def run():
        host = LocalHost()
        live = await HostedLearner.open(host, 3, None, model_factory(kind="lr"), "")
        await host.submit([live.step({"V1": 1.0}, 1) for _ in range(5)])
        policy = make_mitigation("challenger", min_events=2)
        assert policy.on_warning(3, live)
        for i in range(4):
            policy.observe(3, {"V1": float(i)}, i % 2)
        outcome = policy.on_drift(3, live)
        assert outcome.action == "challenger" and outcome.learner is not live
        live.replace_with(outcome.learner)
        await asyncio.sleep(0)
        return live, host.learners.learners[3]

    live, model = asyncio.run(run())
    assert live.version == model.version == "lr-g1"
    assert live.events_learned == model.events_learned == 4


def test_a_reset_reaches_the_host_after_what_was_sent_before():
    async def run():
        host = LocalHost()
        live = await HostedLearner.open(host, 0, None, model_factory(kind="lr"), "")
        host.submit([live.step({"V1": 1.0}, 1)])
        live.reset()
        return live, host.learners.learners[0]

    live, model = asyncio.run(run())
    assert (live.version, live.events_learned) == (model.version, model.events_learned) == ("lr-g1", 0)
