"""take_batches against a Faust stream without a broker (app.testing.faust_stream): batch by batch,
what is taken, when a batch ends, what is tracked and what is dropped."""
from __future__ import annotations

import asyncio

import pytest
from faust.types import TP

from app.agents.take import take_batches
from app.testing.faust_stream import app_and_stream, event_of

TP0, TP1 = TP("transactions", 0), TP("transactions", 1)


def run(coro):
    return asyncio.run(coro)


async def put(app, stream, tp, *offsets):
    for offset in offsets:
        await stream.channel.put(event_of(app, tp, offset))


def offsets(batch):
    return [(e.message.partition, e.message.offset) for e in batch]


def test_what_is_in_the_queue_is_taken_at_once_up_to_max_in_order():
    async def go():
        app, stream = app_and_stream("transactions")
        await put(app, stream, TP0, 0, 1)
        await put(app, stream, TP1, 0)
        await put(app, stream, TP0, 2, 3)
        batches = take_batches(stream, 4, within=10.0)  # a full batch does not wait
        first = await asyncio.wait_for(batches.__anext__(), 1.0)
        assert offsets(first) == [(0, 0), (0, 1), (1, 0), (0, 2)]
        second = batches.__anext__()
        await asyncio.sleep(0.01)
        await put(app, stream, TP0, 4)  # within 10 s of (0, 3): same batch, which ends when full...
        await put(app, stream, TP0, 5, 6, 7)
        assert offsets(await asyncio.wait_for(second, 1.0)) == [(0, 3), (0, 4), (0, 5), (0, 6)]
        await batches.aclose()
    run(go())


def test_a_batch_ends_within_seconds_after_its_first_event():
    async def go():
        app, stream = app_and_stream("transactions")
        batches = take_batches(stream, 100, within=0.05)
        taking = asyncio.ensure_future(batches.__anext__())
        await asyncio.sleep(0.02)
        assert not taking.done()  # no event yet: no batch, however long it takes
        await put(app, stream, TP0, 0)
        await asyncio.sleep(0.02)
        await put(app, stream, TP0, 1)  # 20 ms after the first: in its batch
        assert not taking.done()
        first = await asyncio.wait_for(taking, 1.0)
        assert offsets(first) == [(0, 0), (0, 1)]
        await put(app, stream, TP0, 2)
        assert offsets(await asyncio.wait_for(batches.__anext__(), 1.0)) == [(0, 2)]
        await batches.aclose()
    run(go())


def test_events_are_tracked_until_acknowledged_and_then_acked_for_the_commit():
    async def go():
        app, stream = app_and_stream("transactions")
        await put(app, stream, TP0, 10, 11, 12)
        batches = take_batches(stream, 3, within=0.01)
        batch = await batches.__anext__()
        unacked = app.consumer.unacked
        assert sorted(m.offset for m in unacked) == [10, 11, 12]  # the consumer does not commit past them
        assert stream.events_total == 3
        await stream.ack(batch[0])
        await stream.ack(batch[1])
        assert sorted(m.offset for m in unacked) == [12]
        assert list(app.consumer._acked[TP0]) == [10, 11]  # what the consumer's commit reads
        await batches.aclose()
    run(go())


def test_events_of_a_previous_consumer_generation_are_dropped_unseen_as_faust_drops_them():
    async def go():
        app, stream = app_and_stream("transactions")
        await put(app, stream, TP0, 0, 1)  # generation 0
        app.consumer_generation_id = 1  # a rebalance came: they will be read again
        await put(app, stream, TP0, 0, 1)
        batches = take_batches(stream, 10, within=0.01)
        batch = await batches.__anext__()
        assert offsets(batch) == [(0, 0), (0, 1)] and {e.message.generation_id for e in batch} == {1}
        assert {m.generation_id for m in app.consumer.unacked} == {1} and len(app.consumer.unacked) == 2
        await batches.aclose()
    run(go())


def test_events_taken_while_the_flow_is_suspended_are_dropped_unseen():
    async def go():
        app, stream = app_and_stream("transactions")
        app.flow_control.suspend()  # a rebalance is under way
        stream.channel.queue.put_nowait(event_of(app, TP0, 5))
        batches = take_batches(stream, 10, within=0.01)
        taking = asyncio.ensure_future(batches.__anext__())
        await asyncio.sleep(0.03)
        assert not taking.done() and stream.channel.queue.empty()  # taken and dropped
        app.flow_control.resume()
        await put(app, stream, TP0, 6)
        assert offsets(await asyncio.wait_for(taking, 1.0)) == [(0, 6)]
        assert [m.offset for m in app.consumer.unacked] == [6]
        await batches.aclose()
    run(go())


def test_an_error_thrown_into_the_channel_is_raised():
    async def go():
        app, stream = app_and_stream("transactions")
        await stream.channel.throw(KeyError("from the conductor"))
        with pytest.raises(KeyError, match="from the conductor"):
            await take_batches(stream, 10, within=0.01).__anext__()
    run(go())


@pytest.mark.parametrize("while_", ["waiting for a first event", "filling a batch"])
def test_the_batches_end_when_faust_stops_the_agent(while_):
    async def go():
        app, stream = app_and_stream("transactions")
        batches = take_batches(stream, 10, within=5.0)
        taking = asyncio.ensure_future(batches.__anext__())
        if while_ == "filling a batch":
            await put(app, stream, TP0, 0)
        await asyncio.sleep(0.01)
        stream.channel._throw(StopAsyncIteration())  # what faust.agents.actor.Actor.cancel does
        with pytest.raises(StopAsyncIteration):  # the end of the batches, not an error
            await asyncio.wait_for(taking, 1.0)
    run(go())


@pytest.mark.parametrize("max_, within, poll_s", [(0, 0.01, 0.001), (5, -1.0, 0.001), (5, 0.01, 0.0)])
def test_nonsense_sizes_are_refused(max_, within, poll_s):
    async def go():
        with pytest.raises(ValueError, match="take_batches needs"):
            await take_batches(app_and_stream("transactions")[1], max_, within, poll_s).__anext__()
    run(go())
