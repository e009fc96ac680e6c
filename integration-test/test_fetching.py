"""Records fetched for a paused partition are not lost (app.compat.faust.fetching), on the real broker.

The sequence of a failover's table recovery, step by step, with a real aiokafka consumer and Faust's
own fetch code (``Consumer.getmany`` and the consumer thread's ``_fetch_records``, run in this event
loop instead of Faust's thread): a fetch waits with only a changelog partition active; the recovery
pauses the changelog (the live set of active partitions becomes empty) and seeks the stream partition
to its committed offset; the stream's backlog arrives and wakes the waiting fetch; then the stream
partition is resumed. Faust as it ships loses that backlog; with the mend every record is delivered,
in order.

And the fetch that waits for the quiet partitions: the consumer the worker builds holds fetched
records of a busy partition past aiokafka's prefetch backoff, so that its next fetch is of a quiet
partition alone; a record then sent to the busy partition arrives once that fetch is over, after
Faust's 1.5 s, or at most ``CONSUMER_FETCH_MAX_WAIT_MS`` with the mend (app.compat.faust.fetch_tuning).

And the fetch that answers at once: with aiokafka's ``fetch_min_bytes`` of 1, a steady trickle of
transactions comes one fetch per record or two; the worker's consumer (``CONSUMER_FETCH_MIN_BYTES``)
gets several per fetch.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import time
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.transport import consumer as faust_consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.utils import DefaultSchedulingStrategy

import settings
from app.compat.faust import fetching
from app.admin import bootstrap_servers, ensure_topics
from app.testing.stack import BROKER

BACKLOG = 100


def fake_faust_consumer(kafka: AIOKafkaConsumer, active: set, getmany_of_thread) -> SimpleNamespace:
    """What Faust's fetch loop uses of its consumer and its thread, around a real aiokafka consumer."""
    async def call_thread(fun, *args, **kwargs):   # Faust runs these in its consumer thread
        result = fun(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    thread = SimpleNamespace(_ensure_consumer=lambda: kafka, call_thread=call_thread,
                             consumer=SimpleNamespace(flow_active=True))
    thread._fetch_records = functools.partial(AIOKafkaConsumerThread._fetch_records, thread)

    async def wait_next_records(timeout):
        if not active:          # Faust does not fetch with no active partition
            await asyncio.sleep(timeout)
            return {}, active
        return await getmany_of_thread(thread, active, timeout), active

    app = SimpleNamespace(consumer_generation_id=1, monitor=SimpleNamespace(track_tp_end_offset=lambda tp, o: None))
    return SimpleNamespace(
        app=app, flow_active=True, should_stop=False, _buffered_partitions=set(), _thread=thread,
        scheduler=DefaultSchedulingStrategy(), _wait_next_records=wait_next_records,
        _to_message=lambda tp, record: record.offset, highwater=lambda tp: kafka.highwater(tp),
        log=SimpleNamespace(dev=lambda *a: None, warning=lambda *a: None))


async def recovery_sequence(names, getmany, getmany_of_thread) -> tuple[list[int], list[int]]:
    """The offsets of the stream partition delivered while it was paused, and after it resumed."""
    stream = TopicPartition(names.transactions, 0)
    changelog = TopicPartition(f"{names.app_id}-model-checkpoints-changelog", 0)
    await ensure_topics(BROKER, [stream.topic, changelog.topic], 1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(BROKER))
    await producer.start()
    try:
        for i in range(BACKLOG):
            await producer.send(stream.topic, f"transaction {i}".encode(), partition=0)
        await producer.flush()
    finally:
        await producer.stop()
    kafka = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(BROKER), enable_auto_commit=False,
                             auto_offset_reset="earliest")
    await kafka.start()
    try:
        kafka.assign([stream, changelog])
        kafka.seek(stream, 0)
        kafka.seek(changelog, 0)
        active = {changelog}    # recovery: only the changelog is read
        consumer = fake_faust_consumer(kafka, active, getmany_of_thread)
        for _ in range(200):    # aiokafka prefetches the paused stream's backlog meanwhile
            if stream in kafka._fetcher._records:
                break
            await asyncio.sleep(0.05)
        assert stream in kafka._fetcher._records

        async def collect(timeout: float) -> list[int]:
            return [offset async for tp, offset in getmany(consumer, timeout) if tp == stream]
        waiting = asyncio.ensure_future(collect(5.0))
        await asyncio.sleep(0.3)          # the fetch waits for changelog records
        assert not waiting.done()
        active.clear()                    # the changelog is read: paused
        kafka.seek(stream, 0)             # the stream partition is sought to its committed offset
        while_paused = await waiting
        active.add(stream)                # and resumed
        after = []
        for _ in range(6):
            got = await collect(1.0)
            after += got
            if len(after) >= BACKLOG:
                break
        return while_paused, after
    finally:
        await kafka.stop()


def test_faust_as_shipped_loses_the_backlog_fetched_for_a_paused_partition(names):
    # the defect the mend is for; if this fails, Faust no longer has it and app/compat/faust/fetching.py can go
    while_paused, after = asyncio.run(recovery_sequence(
        names, faust_consumer.Consumer.getmany, fetching._ORIGINAL_THREAD_GETMANY))
    assert while_paused == []
    assert after == []            # the backlog was fetched, skipped, and is never read again


@pytest.mark.parametrize("getmany, getmany_of_thread", [
    (fetching.getmany, fetching.thread_getmany),                  # the mend as installed
    (fetching.getmany, fetching._ORIGINAL_THREAD_GETMANY),        # its rewind alone (the live set)
    (faust_consumer.Consumer.getmany, fetching.thread_getmany),   # its frozen set alone
], ids=["mend", "rewind-only", "frozen-set-only"])
def test_the_mend_delivers_every_record_of_the_paused_partition_in_order(names, getmany, getmany_of_thread):
    while_paused, after = asyncio.run(recovery_sequence(names, getmany, getmany_of_thread))
    assert while_paused == []
    assert after == list(range(BACKLOG))


@contextlib.asynccontextmanager
async def producer_and_worker_consumer(topics: list[str], **consumer_attributes):
    """A started producer (no linger) and the consumer the worker builds (not started yet), with the
    given aiokafka attributes set where not None; both stopped at the end."""
    from app.worker import app

    await ensure_topics(BROKER, topics, 1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(BROKER), linger_ms=0)
    await producer.start()
    try:
        kafka = app.consumer._thread._create_worker_consumer(app.transport)
        for name, value in consumer_attributes.items():
            if value is not None:
                setattr(kafka, name, value)
        try:
            yield producer, kafka
        finally:
            await kafka.stop()
    finally:
        await producer.stop()


async def seconds_to_a_new_record(names, fetch_max_wait_ms: int | None) -> float:
    """From sending a record to the busy partition until the worker's consumer (as the worker builds
    it; with ``fetch_max_wait_ms`` instead, if given) returns it, while its fetch of the quiet
    partition alone is in flight."""
    busy, quiet = TopicPartition(names.transactions, 0), TopicPartition(names.labels, 0)
    async with producer_and_worker_consumer([busy.topic, quiet.topic],
                                            _fetch_max_wait_ms=fetch_max_wait_ms) as (producer, kafka):
        for i in range(20):
            await producer.send(busy.topic, f"transaction {i}".encode(), partition=0)
        await producer.flush()
        await kafka.start()
        kafka.assign([busy, quiet])
        kafka.seek(busy, 0)
        kafka.seek(quiet, 0)
        first = await kafka.getmany(busy, timeout_ms=10_000, max_records=1)  # 19 fetched records left
        assert [r.offset for r in first.get(busy, [])] == [0]
        await asyncio.sleep(0.3)           # past the prefetch backoff (0.1 s): a fetch of `quiet` alone waits
        rest = await kafka.getmany(busy, timeout_ms=10_000)
        assert [r.offset for r in rest.get(busy, [])] == list(range(1, 20))
        sent = time.monotonic()
        await producer.send_and_wait(busy.topic, b"the next transaction", partition=0)
        new = await kafka.getmany(busy, timeout_ms=10_000)
        assert [r.offset for r in new.get(busy, [])] == [20]
        return time.monotonic() - sent


def test_faust_as_shipped_holds_a_busy_partition_back_while_a_quiet_one_is_fetched(names):
    # why CONSUMER_FETCH_MAX_WAIT_MS exists; if this fails, the wait no longer holds the busy partition back
    assert asyncio.run(seconds_to_a_new_record(names, 1500)) > 1.0


def test_the_worker_consumer_waits_at_most_the_configured_fetch_wait(names):
    assert settings.CONSUMER_FETCH_MAX_WAIT_MS <= 100
    assert asyncio.run(seconds_to_a_new_record(names, None)) < 0.5


TRICKLE = 60  # records, one every TRICKLE_GAP_S: about 500 a second
TRICKLE_GAP_S = 0.002


async def records_per_fetch(names, fetch_min_bytes: int | None) -> list[int]:
    """How many records each fetch of the worker's consumer (as the worker builds it; with
    ``fetch_min_bytes`` instead, if given) brought while transaction-sized records trickled in."""
    topic = TopicPartition(names.transactions, 0)
    async with producer_and_worker_consumer([topic.topic], _fetch_min_bytes=fetch_min_bytes) as (producer, kafka):
        await kafka.start()
        kafka.assign([topic])
        await kafka.seek_to_end(topic)
        await kafka.position(topic)
        fetched: list[int] = []

        async def collect() -> None:
            while sum(fetched) < TRICKLE:
                got = await kafka.getmany(topic, timeout_ms=10_000)
                if got.get(topic):
                    fetched.append(len(got[topic]))
        collecting = asyncio.ensure_future(collect())
        value = bytes(300)  # about a transaction's Avro
        for _ in range(TRICKLE):
            await producer.send(topic.topic, value, partition=0)
            await asyncio.sleep(TRICKLE_GAP_S)
        await asyncio.wait_for(collecting, 30)
        return fetched


def test_the_worker_consumer_fetches_a_trickle_several_records_at_a_time(names):
    assert settings.CONSUMER_FETCH_MIN_BYTES >= 1000
    one_byte = asyncio.run(records_per_fetch(names, 1))
    worker = asyncio.run(records_per_fetch(names, None))
    print(f"records per fetch: aiokafka's 1 byte {one_byte}; the worker's {worker}")
    assert sum(worker) == sum(one_byte) == TRICKLE
    assert TRICKLE / len(worker) >= 3           # about six 300-byte records make 2,000 bytes
    assert len(one_byte) > 2 * len(worker)      # what the setting is for
