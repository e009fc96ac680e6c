"""Records fetched but not delivered are read again (app.compat.faust.fetching)."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from aiokafka.consumer.subscription_state import SubscriptionState
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer
from faust.transport.utils import DefaultSchedulingStrategy

from app.compat.faust import fetching
from app.compat.faust.patching import UnsupportedVersion

T0 = TopicPartition("t.transactions", 0)
T1 = TopicPartition("t.transactions", 1)
S0 = TopicPartition("t.scores", 0)


def record(offset: int) -> SimpleNamespace:
    return SimpleNamespace(offset=offset)


def fake_consumer(batch: dict, active: set | None, *, generation: int = 1, flow_active: bool = True):
    """What :func:`fetching.getmany` uses of Faust's consumer: one fetched ``batch``, the live set of
    ``active`` partitions, and a thread that records the rewinds it is asked for."""
    rewinds, timeouts = [], []

    async def wait_next_records(timeout):
        timeouts.append(timeout)
        return batch, active

    async def call_thread(fun, consumer, offsets):
        rewinds.append(dict(offsets))
        return {tp: offsets[tp] + 100 for tp in offsets}  # "moved back from" positions

    app = SimpleNamespace(consumer_generation_id=generation,
                          monitor=SimpleNamespace(track_tp_end_offset=lambda tp, offset: None))
    consumer = SimpleNamespace(
        app=app, flow_active=flow_active, should_stop=False, _buffered_partitions=set(),
        scheduler=DefaultSchedulingStrategy(), _wait_next_records=wait_next_records,
        _to_message=lambda tp, rec: (tp, rec.offset), highwater=lambda tp: 1000,
        _thread=SimpleNamespace(_ensure_consumer=lambda: "aiokafka consumer", call_thread=call_thread),
        log=SimpleNamespace(dev=lambda *a: None, warning=lambda *a: None), timeouts=timeouts)
    return consumer, rewinds


def drain(consumer, on_message=None) -> list:
    async def run():
        got = []
        async for tp, message in fetching.getmany(consumer, timeout=1.0):
            got.append(message)
            if on_message:
                on_message(tp, message)
        return got
    return asyncio.run(run())


def test_a_whole_batch_of_active_partitions_is_delivered_and_nothing_moves():
    consumer, rewinds = fake_consumer({T0: [record(5), record(6)], T1: [record(3)]}, {T0, T1})
    got = drain(consumer)
    assert sorted(got) == [(T0, 5), (T0, 6), (T1, 3)]
    assert rewinds == []


def test_records_of_a_paused_partition_move_it_back_to_the_first_of_them():
    # the stall after a failover: the thread returned the backlog of a partition paused for recovery
    consumer, rewinds = fake_consumer({T0: [record(5), record(6)], T1: [record(258), record(259)]}, {T0})
    got = drain(consumer)
    assert got == [(T0, 5), (T0, 6)]
    assert rewinds == [{T1: 258}]


def test_a_fetch_waits_briefly_while_a_partition_is_out_for_a_full_buffer():
    # the frozen set would keep the busy partition out of a fetch for Faust's whole timeout (1 s)
    consumer, _ = fake_consumer({}, {S0})
    consumer._buffered_partitions.add(T0)
    drain(consumer)
    consumer._buffered_partitions.clear()  # back in the active set: the fetch waits as Faust asks
    drain(consumer)
    assert consumer.timeouts == [fetching.RESUME_CHECK_S, 1.0]


def test_a_partition_paused_mid_batch_keeps_the_rest_aside_even_if_resumed():
    active = {T0, T1}

    def pause_then_resume(tp, message):
        if message == (T0, 5):
            active.discard(T1)   # paused while the agent took T0's first record
        if message == (T0, 6):
            active.add(T1)       # and active again before the batch ends

    consumer, rewinds = fake_consumer({T0: [record(5), record(6), record(7)], T1: [record(3), record(4), record(5)]},
                                      active)
    got = drain(consumer, pause_then_resume)
    t1 = [m for m in got if m[0] == T1]
    assert [m for m in got if m[0] == T0] == [(T0, 5), (T0, 6), (T0, 7)]
    assert t1 == [(T1, 3 + i) for i in range(len(t1))]   # in order, nothing past the gap
    assert len(t1) < 3 and rewinds == [{T1: 3 + len(t1)}]


def test_a_generation_change_mid_batch_moves_back_every_partition_with_records_left():
    consumer, rewinds = fake_consumer({T0: [record(5), record(6)], S0: [record(9), record(10)]}, {T0, S0})

    def rebalance(tp, message):
        consumer.app.consumer_generation_id = 2

    got = drain(consumer, rebalance)
    assert len(got) == 1
    ((tp, offset),) = got
    expected = {T0: 5, S0: 9}
    expected[tp] = offset + 1
    assert rewinds == [expected]


def test_flow_stopped_seeks_to_committed_and_yields_nothing():
    consumer, rewinds = fake_consumer({T0: [record(5)]}, {T0}, flow_active=False)
    seeks = []

    async def perform_seek():
        seeks.append(True)
    consumer.perform_seek = perform_seek
    assert drain(consumer) == []
    assert seeks == [True] and rewinds == []


def aiokafka_consumer(positions: dict) -> SimpleNamespace:
    """An aiokafka subscription (the real state classes) with ``positions`` (None: awaiting a reset)."""
    subscription = SubscriptionState()
    subscription.assign_from_user(set(positions))
    for tp, position in positions.items():
        if position is not None:
            subscription.seek(tp, position)
    seeks = []

    def seek(tp, offset):
        seeks.append((tp, offset))
        subscription.seek(tp, offset)
    return SimpleNamespace(assignment=subscription.assigned_partitions, _subscription=subscription, seek=seek,
                           seeks=seeks)


def test_rewind_only_moves_back_an_assigned_partition_that_stands_past_the_offset():
    async def run():   # aiokafka's partition states are made in an event loop
        consumer = aiokafka_consumer({T0: 1007, T1: 200, S0: None})
        return consumer, fetching.rewind(consumer, {T0: 258, T1: 258, S0: 5, TopicPartition("t.labels", 0): 1})
    consumer, moved = asyncio.run(run())
    assert moved == {T0: 1007}
    assert consumer.seeks == [(T0, 258)]   # T1 stands before 258 (a seek to committed came first),
    #                                        S0 awaits a reset, t.labels is not assigned


def test_the_thread_fetches_with_a_frozen_copy_and_not_at_all_for_no_partition():
    seen = []

    async def call_thread(fun, consumer, active_partitions, timeout, max_records):
        seen.append(active_partitions)
        return {}

    thread = SimpleNamespace(_ensure_consumer=lambda: SimpleNamespace(_max_poll_records=None), call_thread=call_thread,
                             _fetch_records=None)
    live = {T0, T1}
    asyncio.run(fetching.thread_getmany(thread, live, 1.0))
    live.clear()
    assert seen == [frozenset({T0, T1})]
    assert asyncio.run(fetching.thread_getmany(thread, live, 1.0)) == {}
    assert len(seen) == 1                  # an empty set is "every partition" to aiokafka: not asked
    asyncio.run(fetching.thread_getmany(thread, None, 1.0))
    assert seen[-1] is None                # client-only consumers still fetch everything


def test_install_patches_faust_consumer():
    assert fetching.install() is Consumer
    assert Consumer.getmany is fetching.getmany
    assert AIOKafkaConsumerThread.getmany is fetching.thread_getmany


@pytest.mark.parametrize("versions, refused", [
    ({"faust_streaming": "0.16.0"}, "faust-streaming 0.15.3, but faust-streaming 0.16.0 is installed"),
    ({"aiokafka": "0.15.0"}, "aiokafka 0.14.0, but aiokafka 0.15.0 is installed"),
], ids=["faust", "aiokafka"])
def test_install_refuses_another_faust_or_aiokafka_and_patches_nothing(installed, monkeypatch, versions, refused):
    installed(**versions)
    monkeypatch.delattr(Consumer, fetching._PATCHED, raising=False)
    monkeypatch.setattr(Consumer, "getmany", "faust's own")
    with pytest.raises(UnsupportedVersion, match=f"app.compat.faust.fetching was written against {refused}"):
        fetching.install()
    assert Consumer.getmany == "faust's own"
