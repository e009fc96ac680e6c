"""The worker's first call to the broker is retried while the broker is down, within BROKER_WAIT_S."""
from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError

from app.worker import wait_for_broker


def test_the_broker_is_waited_for_until_it_answers():
    calls = []

    async def attempt():
        calls.append(1)
        if len(calls) < 3:
            raise KafkaConnectionError("Unable to bootstrap")
        return "topics"

    assert asyncio.run(wait_for_broker(attempt, wait_s=30)) == "topics" and len(calls) == 3


def test_a_broker_that_never_answers_stops_the_worker_with_the_reason():
    async def attempt():
        raise KafkaConnectionError("Unable to bootstrap")

    with pytest.raises(RuntimeError, match="not reachable after"):
        asyncio.run(wait_for_broker(attempt, wait_s=1))
