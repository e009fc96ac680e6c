"""The aligner on Faust's side: events held and released in step, dropped at a rebalance, and the
Kafka client's partitions paused and resumed."""
from __future__ import annotations

import asyncio
import types

from aiokafka.structs import TopicPartition

from app.agents.alignment import Aligner, _apply
from app.scoring.alignment import EventTimeAlignment

TOPIC = "transactions"


class Client:
    """The part of aiokafka's consumer the aligner uses."""

    def __init__(self, partitions) -> None:
        self._assigned = {TopicPartition(TOPIC, p) for p in partitions}
        self._paused: set = set()

    def assignment(self):
        return set(self._assigned)

    def paused(self):
        return set(self._paused)

    def pause(self, *tps):
        assert set(tps) <= self._assigned
        self._paused |= set(tps)

    def resume(self, *tps):
        self._paused -= set(tps)


class Thread:
    def __init__(self, client) -> None:
        self.client, self.calls = client, 0

    def _ensure_consumer(self):
        return self.client

    async def call_thread(self, fun, *args):
        self.calls += 1
        return fun(*args)


class Consumer:
    def __init__(self, partitions, highwater=10_000) -> None:
        self.partitions, self.highwaters = set(partitions), {p: highwater for p in partitions}
        self.topic_count = len(self.partitions)
        self._thread = Thread(Client(partitions))

    def assignment(self):
        return {TopicPartition(TOPIC, p) for p in self.partitions}

    def highwater(self, tp):
        return self.highwaters.get(tp.partition)

    def topic_partitions(self, topic):
        return self.topic_count if topic == TOPIC else None


def aligner_of(partitions=(0, 1, 2), skew=60.0):
    app = types.SimpleNamespace(consumer=Consumer(partitions), consumer_generation_id=1)
    topic = types.SimpleNamespace(get_topic_name=lambda: TOPIC)
    return app, Aligner(app, topic, EventTimeAlignment(max_skew_s=skew, idle_s=5.0))


def event(partition, offset, event_time):
    return types.SimpleNamespace(value=types.SimpleNamespace(event_time=event_time),
                                 message=types.SimpleNamespace(partition=partition, offset=offset),
                                 name=f"{partition}@{offset}")


def names(events):
    return [e.name for e in events]


def test_events_are_released_in_step_and_in_event_time_order():
    _, aligner = aligner_of()
    aligner.admit([event(0, 0, 100.0), event(0, 1, 300.0), event(1, 0, 120.0), event(2, 0, 110.0)])
    assert names(aligner.release()) == ["0@0", "2@0", "1@0"]  # 0@1 is 180 s ahead of the slowest (1, at 120)
    assert aligner.held == 1
    aligner.admit([event(1, 1, 250.0), event(2, 1, 260.0)])
    assert names(aligner.release()) == ["1@1", "2@1", "0@1"]
    assert aligner.held == 0


def test_a_limit_leaves_the_rest_held_in_order():
    _, aligner = aligner_of()
    aligner.admit([event(0, i, 100.0 + i) for i in range(5)] + [event(1, i, 100.5 + i) for i in range(5)]
                  + [event(2, 0, 104.0)])
    first = names(aligner.release(limit=4))
    rest = names(aligner.release())
    assert first == ["0@0", "1@0", "0@1", "1@1"]
    assert rest == ["0@2", "1@2", "0@3", "1@3", "0@4", "2@0", "1@4"]


def test_a_value_without_event_time_keeps_its_place_in_its_partition():
    _, aligner = aligner_of((0, 1))
    bad = types.SimpleNamespace(value=b"not a record", message=types.SimpleNamespace(partition=0, offset=1), name="0@1")
    aligner.admit([event(0, 0, 100.0), bad, event(0, 2, 101.0), event(1, 0, 100.0)])
    assert names(aligner.release()) == ["0@0", "0@1", "1@0", "0@2"]


def test_a_rebalance_drops_what_is_held_since_faust_reads_it_again_from_the_committed_offsets():
    app, aligner = aligner_of((0, 1))
    aligner.admit([event(0, 0, 100.0), event(1, 0, 1000.0)])
    assert names(aligner.release()) == ["0@0"] and aligner.held == 1
    app.consumer_generation_id = 2  # a rebalance: partition 1 comes again from offset 0
    aligner.admit([event(1, 0, 1000.0)])
    assert aligner.held == 1
    asyncio.run(aligner.revoked({TOPIC: {0, 1}}))
    assert aligner.held == 0 and aligner.alignment.event_time == {}


def test_events_of_a_partition_no_longer_assigned_are_dropped():
    app, aligner = aligner_of((0, 1))
    aligner.admit([event(0, 0, 100.0), event(1, 0, 1000.0), event(1, 1, 1001.0)])
    app.consumer.partitions = {0}
    assert names(aligner.release()) == ["0@0"] and aligner.held == 0


def test_pace_pauses_the_partitions_ahead_in_the_client_and_resumes_them():
    app, aligner = aligner_of((0, 1, 2))
    client = app.consumer._thread.client
    aligner.admit([event(0, 0, 100.0), event(1, 0, 500.0), event(2, 0, 130.0)])
    asyncio.run(aligner.pace())
    assert client.paused() == {TopicPartition(TOPIC, 1)}
    calls = app.consumer._thread.calls
    asyncio.run(aligner.pace())
    assert app.consumer._thread.calls == calls  # nothing changed, and the last sync is recent
    app.consumer.highwaters[0] = 1  # 0 has read all it has: 2 (130) is the slowest, 1 is still 370 s ahead
    asyncio.run(aligner.pace())
    assert client.paused() == {TopicPartition(TOPIC, 1)}
    aligner.admit([event(2, 1, 480.0)])
    asyncio.run(aligner.pace())
    assert client.paused() == set()


def test_apply_pauses_only_what_the_client_holds_and_resumes_what_is_no_longer_wanted():
    client = Client({0, 1})
    _apply(client, TOPIC, frozenset({1, 7}))
    assert client.paused() == {TopicPartition(TOPIC, 1)}
    client._paused.add(TopicPartition("other", 0))
    _apply(client, TOPIC, frozenset())
    assert client.paused() == {TopicPartition("other", 0)}  # another topic's pause is not this aligner's


def test_the_alignments_clock_stops_while_the_agent_scores():
    now = [0.0]
    app = types.SimpleNamespace(consumer=Consumer((0, 1)), consumer_generation_id=1)
    topic = types.SimpleNamespace(get_topic_name=lambda: TOPIC)
    aligner = Aligner(app, topic, EventTimeAlignment(max_skew_s=60.0, idle_s=5.0), clock=lambda: now[0])
    aligner.admit([event(0, 0, 100.0), event(1, 0, 1000.0)])
    assert names(aligner.release()) == ["0@0"]
    with aligner.busy():  # the model host starts: ten seconds without taking an event
        now[0] = 10.0
    assert aligner.active_time() == 0.0
    assert aligner.release() == []  # 0 is not idle: the agent took nothing meanwhile
    now[0] = 15.0  # five seconds of taking events without one of 0's
    assert names(aligner.release()) == ["1@0"]


def test_the_snapshots_event_times_of_this_topic_reach_the_alignment():
    app = types.SimpleNamespace(consumer=Consumer((0,)), consumer_generation_id=1)
    topic = types.SimpleNamespace(get_topic_name=lambda: TOPIC)
    newest = [None]
    aligner = Aligner(app, topic, EventTimeAlignment(max_skew_s=60.0, idle_s=5.0), snapshot=lambda: newest[0])
    aligner.admit([event(0, 0, 1000.0)])
    assert names(aligner.release()) == ["0@0"]  # no snapshot: only this worker's partitions count
    newest[0] = types.SimpleNamespace(event_times={f"{TOPIC}:0": 990.0, f"{TOPIC}:1": 500.0, "labels:0": 9.0},
                                      positions={f"{TOPIC}:0": 0, f"{TOPIC}:1": 40, "labels:0": 3})
    aligner.admit([event(0, 1, 1001.0)])
    assert aligner.release() == []  # partition 1, another worker's, is at 500 (+ 11 behind + 60)
    assert aligner.alignment.learned_time == {0: 990.0, 1: 500.0}
    assert aligner.alignment.learned_offset == {0: 0, 1: 40}


def test_held_events_are_dropped_as_soon_as_a_rebalance_begins():
    app, aligner = aligner_of((0, 1))
    aligner.admit([event(0, 0, 100.0), event(1, 0, 1000.0)])
    assert names(aligner.release()) == ["0@0"] and aligner.held == 1
    assert not aligner.drop_if_rebalancing()
    app.rebalancing = True  # Faust waits for what was taken before it revokes: nothing may stay held
    assert aligner.drop_if_rebalancing() and aligner.held == 0
    aligner.admit([event(1, 0, 1000.0)])
    assert aligner.release() == [] and aligner.held == 0
