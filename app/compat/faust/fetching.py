"""Fetching from Kafka without losing the records Faust sets aside.

The problem (faust-streaming 0.15.3 with aiokafka 0.14.0): Faust's fetch loop
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
Faust's aiokafka consumer in place, on faust-streaming 0.15.3 with aiokafka 0.14.0 only
(:data:`FAUST_VERSIONS`, :data:`AIOKAFKA_VERSIONS`: :func:`rewind` reads aiokafka's partition
states, and the empty set meaning "every partition" is aiokafka's); the worker calls it once, before
the app is created.

Upstream (github.com/faust-streaming/faust):

* pull request #253 (merged, 2022) made a fetch in progress end when the flow is suspended,
  discarding what it had fetched; pull request #256 (merged, 2022) reverted that and added instead
  the seek back to the committed offsets when ``getmany`` finds the flow stopped. This mend keeps that seek;
  it moves back what that seek does not cover: the records set aside in the middle of a batch.
* pull request #239 (merged, 2021) made the set of active partitions one set changed in place, so
  that references to it stay valid: it is that live set the consumer thread is given, and sees
  emptied while it waits.
* robinhood/faust pull request #69 (2018) described both halves of the first failure (an empty set
  fetches every partition; the set is passed by reference and changes during a fetch) and put a
  lock around the fetch; 0.15.3 has no such lock.

The frozen copy has a cost of its own, one of waiting. Faust takes a partition out of the active set
while its stream's buffer is full (``Consumer.on_buffer_full``: the worker is behind, the fetched
records wait in the buffer) and puts it back once the agents have taken half of them
(``on_buffer_drop``). A fetch started meanwhile asks the thread for the other partitions only
(labels, changelogs: quiet) and, the copy being frozen, does not see the busy one come back: it
waits for Faust's whole fetch timeout (1 s) while the agents empty the buffer and then wait for
transactions (seen: a worker behind on one partition took a buffer's worth of transactions, then
none for most of a second, again and again; its model process idle for a quarter of the time). So
while any partition is out for a full buffer, a fetch waits at most :data:`RESUME_CHECK_S`, and the
next one asks again with the set as it is then.

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

from app.compat.faust.patching import patch_once, require

log = logging.getLogger(__name__)

#: The faust-streaming versions whose ``Consumer.getmany`` this module copies.
FAUST_VERSIONS = ("0.15.3",)
#: The aiokafka versions whose partition states :func:`rewind` reads.
AIOKAFKA_VERSIONS = ("0.14.0",)

_PATCHED = "_fraud_keeps_skipped_records"
#: How long a fetch waits for records while a partition is out of the active set for a full buffer:
#: the longest a resumed partition waits to be fetched again (a buffer holds seconds of work).
RESUME_CHECK_S = 0.01


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
    records it does not yield, and waiting at most :data:`RESUME_CHECK_S` while a partition is out
    for a full buffer."""
    if self._buffered_partitions:
        timeout = min(timeout, RESUME_CHECK_S)
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


def check() -> None:
    """Raise :class:`~app.compat.faust.patching.UnsupportedVersion` unless the installed
    faust-streaming and aiokafka are among :data:`FAUST_VERSIONS` and :data:`AIOKAFKA_VERSIONS`."""
    require("faust-streaming", FAUST_VERSIONS, mend=__name__)
    require("aiokafka", AIOKAFKA_VERSIONS, mend=__name__)


def install() -> type:
    """Patch Faust's aiokafka :class:`Consumer` and its thread (once); returns the consumer class.
    Checks the versions first (:func:`check`)."""
    check()
    return patch_once(Consumer, _PATCHED, {(Consumer, "getmany"): getmany,
                                           (AIOKafkaConsumerThread, "getmany"): thread_getmany},
                      "faust Consumer: records fetched but not delivered are read again")
