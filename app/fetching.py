"""Fetching from Kafka without losing the records Faust sets aside.

The problem (faust-streaming 0.15.3 with aiokafka 0.14): Faust's fetch loop
(``Consumer.getmany``) asks its consumer thread for the records of the *active* partitions, then
yields them to the agents, but it skips, without a word, every record of a partition that is no
longer active by the time it looks at it (paused for a table recovery after a rebalance), and every
record left in the batch when the flow stops or the consumer generation changes. aiokafka has
already moved its read position past those records, so they are read again only if something seeks
the partition back before it resumes. Two ways that fails:

* Faust hands the thread its *live* set of active partitions. When the main loop empties it (the
  changelog partitions are paused once a recovery has read them) while the thread is still waiting
  for data, aiokafka takes the empty set for "every partition" and returns the records of the paused
  stream partitions too, from wherever they stand: just after the recovery's seek to the committed
  offsets, that is the whole backlog. Faust skips it, then resumes the partitions past it; nothing
  reads those transactions again and, once the producers stop, the worker waits forever with a lag
  above 0 (seen as a failover's survivor that stopped reading after "Worker ready").
* A fetch that was waiting across the recovery returns records fetched after the seek; they are
  skipped the same way.

The fix: the thread gets a frozen copy of the active partitions (and nothing to fetch when it is
empty), and every record the fetch loop does not yield moves its partition back: after the batch,
a partition with records left over is sought back to the first of them, never forward (if the
partition already stands at or before that offset, say after a seek to its committed offset, it is
left alone), and only while it is still assigned. Records of a partition are never yielded out of
order: once one is set aside, the rest of that partition's batch is too. :func:`install` patches
Faust's aiokafka consumer in place; the worker calls it once, before the app is created.

A second problem, of waiting: aiokafka keeps one fetch at a time in flight to a broker, and leaves
out of it every partition whose fetched records have not all been taken yet. When the agents are
more than 0.1 s (aiokafka's prefetch backoff) behind on the transactions, the next fetch asks for
the quiet partitions only (labels, the tables' changelogs), and the broker holds it until data
comes for them or the fetch's maximum wait is over: Faust sets that to 1.5 s for the worker's
consumer, so the transactions were not fetched again for 1.5 s, again and again while the worker
was behind (seen: a p99 latency of 1.5-2.7 s at half the service's rate, the worker and its model
idle meanwhile). :func:`install` also makes the worker's consumer wait at most
``CONSUMER_FETCH_MAX_WAIT_MS``, for at least ``CONSUMER_FETCH_MIN_BYTES`` (aiokafka's 1 byte made
every fetch at a steady few hundred transactions a second a round trip for one or two of them).

>>> install() is install()   # idempotent: the same patched class
True
>>> first_left_over({"a": [10, 11, 12], "b": [7]}, {"a": 1, "b": 1}, offset=lambda r: r)
{'a': 11}
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import Any, AsyncIterator, Callable, Mapping

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer

import settings
from app.patches import patch_once

log = logging.getLogger(__name__)

_PATCHED = "_fraud_keeps_skipped_records"


def first_left_over(records: Mapping[Any, list], taken: Mapping[Any, int],
                    offset: Callable[[Any], int]) -> dict[Any, int]:
    """For each partition of a fetched batch (``records``: partition -> its records in order) of
    which fewer than all records were yielded (``taken``: partition -> how many), the offset of the
    first record not yielded."""
    return {tp: offset(batch[taken.get(tp, 0)]) for tp, batch in records.items() if taken.get(tp, 0) < len(batch)}


def rewind(consumer: Any, offsets: Mapping[Any, int]) -> dict[Any, int]:
    """In the consumer thread: move each still assigned partition back to ``offsets[tp]`` when it
    stands past it; returns what was moved (partition -> the position it had)."""
    assigned = consumer.assignment()
    assignment = consumer._subscription.subscription.assignment  # aiokafka's partition states
    moved = {}
    for tp, offset in offsets.items():
        if tp not in assigned or assignment is None:
            continue
        state = assignment.state_value(tp)
        if state is None or not state.has_valid_position or state.position <= offset:
            continue  # a seek or a reset is pending, or nothing was skipped past
        moved[tp] = state.position
        consumer.seek(tp, offset)
    return moved


async def getmany(self: Consumer, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
    """:meth:`faust.transport.consumer.Consumer.getmany`, moving back the partitions whose fetched
    records it does not yield."""
    records, active_partitions = await self._wait_next_records(timeout)
    generation_id = self.app.consumer_generation_id
    if records is None or self.should_stop:
        return
    if not self.flow_active:
        self.log.dev("getmany called while flow not active. Seek back to committed offsets.")
        try:
            await self.perform_seek()
        except Exception as exc:
            self.log.warning(f"exception performing seek when flow not active {exc}")
        return
    taken: Counter = Counter()
    set_aside: set = set()
    to_message = self._to_message
    try:
        for tp, record in self.scheduler.iterate(records):
            if not self.flow_active or self.app.consumer_generation_id != generation_id:
                break
            if tp in set_aside:
                continue
            if active_partitions is None or tp in active_partitions or tp in self._buffered_partitions:
                self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                taken[tp] += 1
                yield tp, to_message(tp, record)
            else:
                set_aside.add(tp)
    finally:
        left = first_left_over(records, taken, offset=lambda record: record.offset)
    if left:
        consumer = self._thread._ensure_consumer()
        moved = await self._thread.call_thread(rewind, consumer, left)
        for tp, position in moved.items():
            log.info("fetched records of %s[%d] at offsets %d..%d were not delivered (partition paused, "
                     "flow stopped or a rebalance); reading again from offset %d",
                     tp.topic, tp.partition, left[tp], position - 1, left[tp])


async def thread_getmany(self: AIOKafkaConsumerThread, active_partitions: Any, timeout: float) -> Any:
    """:meth:`AIOKafkaConsumerThread.getmany` with a frozen copy of the active partitions: the thread
    must not see the main loop change the set (an empty set is "every partition" to aiokafka)."""
    if active_partitions is not None:
        active_partitions = frozenset(active_partitions)
        if not active_partitions:
            return {}
    return await _ORIGINAL_THREAD_GETMANY(self, active_partitions, timeout)


_ORIGINAL_THREAD_GETMANY = AIOKafkaConsumerThread.getmany


def create_worker_consumer(self: AIOKafkaConsumerThread, transport: Any) -> Any:
    """:meth:`AIOKafkaConsumerThread._create_worker_consumer` with the broker's wait for a fetch
    bounded by ``CONSUMER_FETCH_MAX_WAIT_MS`` instead of Faust's fixed 1,500 ms, and answered once
    ``CONSUMER_FETCH_MIN_BYTES`` have come (Faust has no setting for either)."""
    consumer = _ORIGINAL_CREATE_WORKER_CONSUMER(self, transport)
    consumer._fetch_max_wait_ms = int(settings.CONSUMER_FETCH_MAX_WAIT_MS)  # read by its fetcher on start
    consumer._fetch_min_bytes = max(1, int(settings.CONSUMER_FETCH_MIN_BYTES))
    return consumer


_ORIGINAL_CREATE_WORKER_CONSUMER = AIOKafkaConsumerThread._create_worker_consumer


def install() -> type:
    """Patch Faust's aiokafka :class:`Consumer` and its thread (once); returns the consumer class."""
    return patch_once(Consumer, _PATCHED, {(Consumer, "getmany"): getmany,
                                           (AIOKafkaConsumerThread, "getmany"): thread_getmany,
                                           (AIOKafkaConsumerThread, "_create_worker_consumer"): create_worker_consumer},
                      "faust Consumer: records fetched but not delivered are read again, "
                      "fetches wait at most CONSUMER_FETCH_MAX_WAIT_MS for CONSUMER_FETCH_MIN_BYTES")
