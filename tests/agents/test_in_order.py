"""Batches' work in the background, one after another: order, and what a failure does."""
from __future__ import annotations

import asyncio
import warnings

import pytest

from app.agents.in_order import InOrder


def test_each_work_starts_once_the_one_before_has_ended():
    async def run():
        lane, log = InOrder(), []

        async def work(name, pause):
            log.append(("start", name))
            await asyncio.sleep(pause)
            log.append(("end", name))
            return name

        futures = [lane.add(work(name, pause)) for name, pause in (("a", 0.02), ("b", 0.0), ("c", 0.01))]
        return await asyncio.gather(*futures), log

    results, log = asyncio.run(run())
    assert results == ["a", "b", "c"]
    assert log == [("start", "a"), ("end", "a"), ("start", "b"), ("end", "b"), ("start", "c"), ("end", "c")]


def test_work_after_a_failure_never_runs_and_fails_with_it():
    async def run():
        lane, ran = InOrder(), []

        async def work(name):
            ran.append(name)
            if name == "a":
                raise ConnectionError("refused")

        futures = [lane.add(work(name)) for name in "abc"]
        return await asyncio.gather(*futures, return_exceptions=True), ran

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a coroutine left never awaited would warn
        outcomes, ran = asyncio.run(run())
    assert ran == ["a"] and all(isinstance(outcome, ConnectionError) for outcome in outcomes)


def test_cancelled_work_cancels_the_work_after_it():
    async def run():
        lane = InOrder()
        first = lane.add(asyncio.sleep(10))
        second = lane.add(asyncio.sleep(0))
        await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        return first.cancelled(), second.cancelled()

    assert asyncio.run(run()) == (True, True)
