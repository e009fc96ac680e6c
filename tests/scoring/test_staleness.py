"""The staleness bound of central learning: what it takes as sent, how long it holds a batch, what
it counts and says when it gives up."""
from __future__ import annotations

import asyncio
import logging
import types

import pytest

from app import metrics
from app.scoring.staleness import StalenessBound


def test_only_confirmed_sends_count_and_the_highest_offset_wins():
    async def run():
        loop = asyncio.get_running_loop()
        bound = StalenessBound(max_examples=10, max_wait_s=1.0)
        pending, failed, cancelled, early = (loop.create_future() for _ in range(4))
        early.set_result(types.SimpleNamespace(offset=7))
        for future in (pending, failed, cancelled, early):
            bound.track(future)
        assert bound.sent_offset == 7  # a future already done is taken at once
        failed.set_exception(RuntimeError("not written"))
        cancelled.cancel()
        await asyncio.sleep(0)
        assert bound.sent_offset == 7  # neither was written
        pending.set_result(types.SimpleNamespace(offset=5))
        await asyncio.sleep(0)
        return bound.sent_offset

    assert asyncio.run(run()) == 7  # a late confirmation of a lower offset does not move it back


def test_the_lag_counts_the_examples_the_snapshot_has_not_taken_in():
    bound = StalenessBound(max_examples=10, max_wait_s=1.0)
    assert bound.lag(None) == 0  # nothing sent, no snapshot
    bound.confirmed(99)
    assert (bound.lag(None), bound.lag(89), bound.lag(150)) == (100, 10, 0)


def test_a_bound_needs_non_negative_limits():
    with pytest.raises(ValueError, match="max_examples >= 0"):
        StalenessBound(max_examples=-1, max_wait_s=1.0)
    with pytest.raises(ValueError):
        StalenessBound(max_examples=1, max_wait_s=-1.0)


def test_giving_up_is_counted_every_time_and_said_once_until_the_learner_catches_up(caplog):
    bound = StalenessBound(max_examples=5, max_wait_s=0.01)
    bound.confirmed(100)
    held_before = metrics.STALENESS_HELD._value.get()
    with caplog.at_level(logging.WARNING, logger="app.scoring.staleness"):
        for _ in range(3):
            asyncio.run(bound.hold(lambda: 10))
        asyncio.run(bound.hold(lambda: 99))  # caught up: no wait
        asyncio.run(bound.hold(lambda: 10))
    assert bound.timeouts == 4
    warnings = [r for r in caplog.records if "examples behind" in r.getMessage()]
    assert len(warnings) == 2  # once for the first three, once again after the learner caught up
    assert "90 examples behind" in warnings[0].getMessage()
    assert metrics.STALENESS_HELD._value.get() >= held_before + 4 * 0.01
    assert metrics.REPLICA_LAG._value.get() == 90


def test_the_bound_is_never_more_than_the_examples_the_snapshot_has_taken_in():
    bound = StalenessBound(max_examples=500, max_wait_s=0.02, poll_s=0.001)
    bound.confirmed(24)  # 25 examples sent, offsets 0-24
    assert asyncio.run(bound.hold(lambda: 9)) > 0  # the snapshot took in 10: 15 behind is beyond 10
    assert asyncio.run(bound.hold(lambda: 12)) == 0.0  # took in 13: 12 behind is within 13
    bound.confirmed(2000)
    assert asyncio.run(bound.hold(lambda: 1500)) == 0.0  # 500 behind, 1,501 taken in: max_examples bounds it...
    assert asyncio.run(bound.hold(lambda: 1400)) > 0  # ...and 600 behind is beyond it
