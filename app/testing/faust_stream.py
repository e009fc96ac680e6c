"""A Faust stream without a broker, for tests of what reads a stream: events put in its channel's
queue go through the same tracking (unacknowledged messages, acks, sensors) as a worker's.

:func:`app_and_stream` makes an app (nothing started, no broker needed), a stream over an iterator
of one topic, subscribed and with the consumer's flow on, as after a worker's first assignment;
:func:`event_of` an event of that topic as the consumer would deliver it.

>>> import asyncio
>>> from faust.types import TP
>>> async def demo():
...     app, stream = app_and_stream("transactions")
...     event = event_of(app, TP("transactions", 0), 7, b"raw")
...     await stream.channel.put(event)
...     return stream.channel.queue.qsize(), event.value, app.topics.acking_topics
>>> asyncio.run(demo())
(1, b'raw', {'transactions'})
"""
from __future__ import annotations

import faust
from faust.events import Event
from faust.types import TP
from faust.types.tuples import ConsumerMessage


def app_and_stream(topic_name: str, app_id: str = "stream-test"):
    """(app, stream) as described in the module; call it inside a running event loop."""
    app = faust.App(app_id, broker="kafka://localhost:1", store="memory://")  # never connected
    channel = app.topic(topic_name, value_serializer="raw").clone(is_iterator=True)
    app.topics.add(channel)
    for topic in channel.topics:  # what the conductor's subscription does for a topic with acks on
        app.topics.acking_topics.add(topic)
    app.flow_control.resume()
    return app, app.stream(channel)


def event_of(app, tp: TP, offset: int, value: bytes = b"", key: bytes | None = None) -> Event:
    """An event of ``tp`` at ``offset`` in the app's current consumer generation, as the consumer
    delivers it (a ``ConsumerMessage``: tracked until acknowledged)."""
    message = ConsumerMessage(tp.topic, tp.partition, offset, timestamp=0.0, timestamp_type=0, headers=[],
                              key=key, value=value, checksum=None, generation_id=app.consumer_generation_id)
    message.incref()  # the conductor's count of the channels it delivered the message to
    return Event(app, key, value, {}, message)
