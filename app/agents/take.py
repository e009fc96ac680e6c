"""Batches of a Faust stream's events taken from its channel in bulk, unacknowledged.

:func:`take_batches` gives what Faust's ``stream.noack_take(max_, within)`` gives (lists of up to
``max_`` events, yielded once full or ``within`` seconds after the first came; the caller
acknowledges each event with ``stream.ack``), at a fraction of the cost per event. Faust's take
adds the events to its buffer one at a time, each through the stream's iterator, a processor and a
turn of the event loop, and ends a batch ``within`` after it began waiting, however many came.
This one takes every event already in the channel's queue at once, and waits in short sleeps
(``poll_s``) for more until the batch is full or ``within`` has passed since its first event.

Each event gets what Faust's stream iterator does to it: an event of a previous consumer
generation, or one that comes while the consumer's flow is suspended (a rebalance), is dropped
unseen, as Faust drops it; the message is tracked as unacknowledged (the consumer does not commit
past it until ``stream.ack``), and the sensors hear of it (``on_message_in``, ``on_stream_event_in``;
``stream.ack`` calls the ``_out`` ones). An error thrown into the channel is raised, but for
``StopAsyncIteration``, Faust's way of stopping an agent's actor: the batches end there.

>>> import asyncio
>>> from faust.types import TP
>>> from app.testing.faust_stream import app_and_stream, event_of
>>> async def demo():
...     app, stream = app_and_stream("transactions")
...     for offset in range(5):
...         await stream.channel.put(event_of(app, TP("transactions", 0), offset))
...     batches = take_batches(stream, 3, within=0.01)
...     first, second = await batches.__anext__(), await batches.__anext__()
...     await batches.aclose()
...     return [e.message.offset for e in first], [e.message.offset for e in second], len(app.consumer.unacked)
>>> asyncio.run(demo())
([0, 1, 2], [3, 4], 5)
"""
from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator


async def take_batches(stream, max_: int, within: float, poll_s: float = 0.001) -> AsyncIterator[list]:
    """Lists of up to ``max_`` events of ``stream``, not acknowledged (see the module)."""
    if max_ < 1 or within < 0 or poll_s <= 0:
        raise ValueError(f"take_batches needs max_ >= 1, within >= 0 and poll_s > 0 "
                         f"(got {max_}, {within}, {poll_s})")
    app = stream.app
    queue = stream.channel.queue
    get_nowait, empty = queue.get_nowait, queue.empty
    flow_control, consumer = app.flow_control, app.consumer
    add_unacked, acking_topics = consumer.unacked.add, app.topics.acking_topics
    on_message_in, on_stream_event_in = app.sensors.on_message_in, app.sensors.on_stream_event_in
    monotonic, sleep = time.monotonic, asyncio.sleep

    def admit(event, batch: list) -> None:
        message = event.message
        if not flow_control.is_active() or message.generation_id != app.consumer_generation_id:
            return  # read before a rebalance: Faust's iterator drops it too; it is read again after
        tp, offset = message.tp, message.offset
        if message.topic in acking_topics and not message.tracked:
            message.tracked = True
            add_unacked(message)
            on_message_in(tp, offset, message)
        on_stream_event_in(tp, offset, stream, event)
        batch.append(event)

    try:
        while not stream.should_stop:
            batch: list = []
            admit(await queue.get(), batch)  # waits for the first event
            deadline = monotonic() + within
            while True:
                while len(batch) < max_ and not empty():
                    admit(get_nowait(), batch)
                remaining = deadline - monotonic()
                if len(batch) >= max_ or remaining <= 0:
                    break
                await sleep(min(poll_s, remaining))
            if batch:
                stream.events_total += len(batch)
                yield batch
    except StopAsyncIteration:  # how Faust stops an agent's actor: thrown into its channel
        return  # a batch being filled is not acknowledged: read again after a restart
