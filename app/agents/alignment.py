"""The event-time alignment of a worker's ``transactions`` partitions, on Faust
(:class:`~app.scoring.alignment.EventTimeAlignment`: which events to hold, which to release, which
partitions to pause).

The scoring agent gives each batch it takes to :meth:`Aligner.admit` and scores what
:meth:`Aligner.release` lets go; held events are not acknowledged, so Faust commits nothing past
them. A timer pauses the fetching of the partitions that run ahead and resumes them once the
others catch up. The pause is the Kafka client's (aiokafka's ``pause``, in the consumer's thread):
the records it had fetched for a paused partition and not handed over are dropped by the client and
fetched again after the resume, so nothing is skipped. Faust's own ``pause_partitions`` is not
used: it filters records already fetched, which it then skips. The timer compares what it wants
with the client's own paused set every time it changes something, and at least every ``resync_s``
(a rebalance gives the client new partition states, unpaused).

In central learning the newest model snapshot says how far the learner has each partition (its
event times), which keeps this worker in step with the others (:mod:`app.scoring.alignment`).

After a rebalance Faust reads every partition again from its committed offset, so the events held
then are dropped: as soon as the rebalance begins (Faust waits for the events taken to be
acknowledged or dropped before it revokes), at the revocation, and any event of an older consumer
generation.

The alignment's clock (how long a partition has given nothing) stops while the agent scores
(:meth:`Aligner.busy`): a partition is idle when the agent took events for ``idle_s`` without one of
it, not when the agent was busy elsewhere (the model host's start, a batch held for the learner).
"""
from __future__ import annotations

import contextlib
import time

from aiokafka.structs import TopicPartition

from app import metrics
from app.scoring.alignment import EventTimeAlignment


class Aligner:
    """An :class:`~app.scoring.alignment.EventTimeAlignment` of the partitions of ``topic`` (a
    Faust topic) this worker's consumer is assigned."""

    def __init__(self, app, topic, alignment: EventTimeAlignment, resync_s: float = 1.0,
                 clock=time.monotonic, snapshot=None) -> None:
        self.app, self.alignment, self.resync_s, self.clock = app, alignment, resync_s, clock
        self.snapshot = snapshot
        self.topic = topic.get_topic_name()
        self.generation = None
        self._applied: frozenset = frozenset()
        self._synced = 0.0
        self._busy_s, self._busy_since = 0.0, None
        self._told = None  # the (snapshot, partition count) the alignment was last told of
        alignment.clock = self.active_time

    def active_time(self) -> float:
        """Seconds of the clock, less those spent inside :meth:`busy`."""
        now = self.clock()
        return now - self._busy_s - (now - self._busy_since if self._busy_since is not None else 0.0)

    @contextlib.contextmanager
    def busy(self):
        """The agent is scoring: the alignment's clock stops meanwhile."""
        self._busy_since = self.clock()
        try:
            yield
        finally:
            self._busy_s += self.clock() - self._busy_since
            self._busy_since = None

    @property
    def held(self) -> int:
        return self.alignment.held

    def admit(self, events) -> None:
        """Hold the stream events ``events`` (``.value.event_time``, ``.message``); one whose value
        has no event time (it could not be decoded: it goes to the dead letters) is held at its
        partition's newest event time, behind the events before it."""
        generation = self.app.consumer_generation_id
        if generation != self.generation:  # read again from the committed offsets: drop what is held
            self.alignment.reset()
            self.generation = generation
        alignment = self.alignment
        for event in events:
            message = event.message
            event_time = getattr(event.value, "event_time", None)
            if event_time is None:
                event_time = alignment.event_time.get(message.partition, float("-inf"))
            alignment.hold(message.partition, event_time, message.offset, event)

    def release(self, limit: int | None = None) -> list:
        """The held events now in step (at most ``limit``), oldest first; those of partitions no
        longer assigned are dropped, and all of them once a rebalance has begun."""
        if self.drop_if_rebalancing():
            return []
        assigned = self.assigned()
        self._learned()
        gone = [p for p in set(self.alignment.waiting) | set(self.alignment.assigned_at) if p not in assigned]
        if gone:
            self.alignment.forget(gone)
        return self.alignment.release(self.highwater, assigned, limit)

    def drop_if_rebalancing(self) -> bool:
        """Drop every held event if a rebalance has begun: Faust then waits for the events taken to
        be acknowledged (or dropped) before it goes on, and reads every partition again from its
        committed offset after it; whether it dropped any."""
        rebalancing = getattr(self.app, "rebalancing", False) or not getattr(self.app.consumer, "flow_active", True)
        if self.alignment.held and rebalancing:
            self.alignment.reset()
            return True
        return False

    async def revoked(self, lost) -> None:
        """A rebalance: every event held is read again from the committed offsets, so none is kept."""
        self.alignment.reset()

    async def close(self) -> None:
        self.alignment.reset()

    def assigned(self) -> set[int]:
        return {tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.topic}

    def highwater(self, partition: int) -> int | None:
        return self.app.consumer.highwater(TopicPartition(self.topic, partition))

    async def pace(self) -> None:
        """Pause the fetching of the partitions that run ahead, resume the others."""
        self._learned()
        wanted = frozenset(self.alignment.to_pause(self.assigned(), self.highwater))
        metrics.PARTITIONS_PAUSED.set(len(wanted))
        metrics.PARTITION_SKEW.set(self.alignment.skew)
        metrics.EVENTS_HELD.set(self.alignment.held)
        now = time.monotonic()
        if wanted == self._applied and now - self._synced < self.resync_s:
            return
        consumer = self.app.consumer
        client = consumer._thread._ensure_consumer()  # aiokafka's consumer, run in the consumer's thread
        await consumer._thread.call_thread(_apply, client, self.topic, wanted)
        self._applied, self._synced = wanted, now

    def _learned(self) -> None:
        """The newest snapshot's event times and offsets of this topic's partitions, to the
        alignment (once per snapshot and partition count: it is asked every batch and every tick)."""
        if self.snapshot is None:  # no central learning: no other worker to keep in step with
            return
        snapshot, partitions = self.snapshot(), self.app.consumer.topic_partitions(self.topic)
        told = (snapshot, partitions)
        if self._told is not None and self._told[0] is told[0] and self._told[1] == told[1]:
            return
        self._told = told
        if snapshot is None:
            self.alignment.learned({}, partitions)
        else:
            self.alignment.learned(self._of_topic(snapshot.event_times), partitions, self._of_topic(snapshot.positions))

    def _of_topic(self, by_source: dict) -> dict[int, object]:
        """The values of ``by_source`` (``"<topic>:<partition>"`` -> value) of this topic, by partition."""
        prefix = f"{self.topic}:"
        return {int(source[len(prefix):]): value for source, value in by_source.items() if source.startswith(prefix)}

    def __repr__(self) -> str:
        return f"Aligner({self.topic!r}, {self.alignment!r})"


def register(app, topic, alignment: EventTimeAlignment, *, interval_s: float, snapshot=None) -> Aligner:
    """The :class:`Aligner` of ``topic`` on ``app``, with its pacing timer; ``snapshot()`` gives the
    central learner's newest snapshot (None: none, or no central learning), whose event times keep
    the workers in step."""
    aligner = Aligner(app, topic, alignment, snapshot=snapshot)

    @app.timer(interval=interval_s, name="app.agents.alignment.pace_partitions")
    async def pace_partitions() -> None:
        await aligner.pace()

    return aligner


def _apply(client, topic: str, partitions: frozenset) -> None:
    """Pause ``partitions`` of ``topic`` and resume its others, as far as the client holds them."""
    assigned = {tp for tp in client.assignment() if tp.topic == topic}
    paused = {tp for tp in client.paused() if tp.topic == topic}
    wanted = {TopicPartition(topic, p) for p in partitions} & assigned
    if wanted - paused:
        client.pause(*(wanted - paused))
    if (paused & assigned) - wanted:
        client.resume(*((paused & assigned) - wanted))
