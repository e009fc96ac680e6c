"""Scoring a worker's partitions in step in event time.

A worker reads the partitions of ``transactions`` as its consumer fetches them, and with a backlog
some partitions run ahead of others by thousands of events. With one model per partition that does
not matter; with one model for all of them (central learning, ``docs/scaleout.md``) it does: a
partition that runs ahead is scored by a model that has not learned the examples of the
partitions that lag, which are older in event time.

An :class:`EventTimeAlignment` puts the worker's events back in step, as Kafka Streams does by
picking the partition with the lowest timestamp: each event taken from the stream is *held*, and
:meth:`~EventTimeAlignment.release` lets go, oldest first, of those no more than ``max_skew_s``
seconds of event time ahead of the slowest partition that can move; each partition's events keep
their order. :meth:`~EventTimeAlignment.to_pause` names the partitions whose fetching to pause
meanwhile (those that run ahead), so that what is held stays about a stream buffer's worth.

With several workers, each aligns its own partitions, and the workers are kept in step through
the central learner: its snapshots say how far it has taken in each partition
(:meth:`~EventTimeAlignment.learned`). A worker estimates where another worker's partition is
taking events from what the learner has of it and from this worker's own lag behind the learner:
the events this worker has released beyond what the learner has of them (per partition, on average;
the most of the last ``idle_s``, since it shrinks while the worker waits), at that partition's rate
of events per second of event time (measured from the snapshots), past its learned event time
(until a rate is known, this worker's lag in event time is taken), and
holds what is more than ``max_skew_s`` ahead of the slowest such estimate. A partition of another
worker whose learned event time has not moved for ``idle_s`` holds nothing back; one the learner
has nothing of yet holds everything back for the first ``idle_s`` after this worker first looked
for it (as an assigned partition that has given nothing yet does). With the labels
late (on the labels topic), the transactions' partitions have no examples, so the workers are not
kept in step with each other.

Only a partition that can move holds the others back: one with nothing left to read (its newest
event is the last before its high watermark) or that has given no event for ``idle_s`` seconds
does not, so a partition that has ended or stalled never stops the rest. A partition assigned that
has given no event yet holds everything back for its first ``idle_s`` seconds (unless its high
watermark is 0: it has never had an event), so that the first events taken do not run ahead of a
partition whose first fetch has not come yet.

>>> align = EventTimeAlignment(max_skew_s=60.0, idle_s=5.0, clock=lambda: 0.0)
>>> for partition, event_time, offset in [(0, 1000.0, 10), (1, 1200.0, 7), (1, 1201.0, 8), (2, 1030.0, 3)]:
...     align.hold(partition, event_time, offset, f"{partition}@{offset}")
>>> more = lambda p: 100  # every partition has more to read
>>> align.release(more, {0, 1, 2, 3})  # 3 has given nothing yet: it holds everything back
[]
>>> align.release(more)  # 1 is 200 s ahead of 0: its events wait
['0@10', '2@3']
>>> sorted(align.to_pause({0, 1, 2}, more)), align.held, align.skew
([1], 2, 201.0)
>>> align.hold(0, 1150.0, 11, "0@11")
>>> align.release(more)  # the slowest that can move is now 2, at 1030
[]
>>> align.release(lambda p: {2: 4}.get(p, 100))  # 2 has nothing left: 0 (1150) is the slowest
['0@11', '1@7', '1@8']
"""
from __future__ import annotations

import collections
import heapq
import time
from typing import Any, Callable, Iterable


class EventTimeAlignment:
    """Holds a worker's events and releases them in step in event time (see the module's
    docstring): none more than ``max_skew_s`` ahead of the slowest partition that can move, its
    own or (with :meth:`learned`) another worker's; a partition that gave nothing for ``idle_s``
    seconds (``clock``, monotonic) cannot."""

    def __init__(self, max_skew_s: float, idle_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        if max_skew_s <= 0 or idle_s <= 0:
            raise ValueError(f"an event-time alignment needs max_skew_s > 0 and idle_s > 0, not {max_skew_s} and {idle_s}")
        self.max_skew_s, self.idle_s, self.clock = max_skew_s, idle_s, clock
        self.event_time: dict[int, float] = {}  # per partition, the newest event time taken from it
        self.offset: dict[int, int] = {}  # per partition, the offset of its newest event taken
        self.seen: dict[int, float] = {}  # per partition, when it last gave an event (clock)
        self.waiting: dict[int, collections.deque] = {}  # per partition, its held (event time, offset, item), in order
        self.released_offset: dict[int, int] = {}  # per partition, the offset of its newest event released
        self.released_time: dict[int, float] = {}  # per partition, the newest event time released
        self.held = 0
        self.assigned_at: dict[int, float] = {}  # per partition assigned, when first seen so (clock)
        self.skew = 0.0  # at the last decision: the newest partition's event time minus the slowest's
        self.learned_time: dict[int, float] = {}  # per partition of the topic (any worker's), as the learner has it
        self.learned_moved: dict[int, float] = {}  # per partition, when its learned event time last moved (clock)
        self.partitions: int | None = None  # the topic's partitions (None: unknown)
        self.unknown_since: dict[int, float] = {}  # per other worker's partition the learner has nothing of
        self.learned_offset: dict[int, int] = {}  # per partition, the highest offset the learner has
        self.first_learned: dict[int, tuple[int, float]] = {}  # per partition, the first (offset, time) seen learned
        self._lags: collections.deque = collections.deque()  # (clock, lag in event time, in events) of late

    def hold(self, partition: int, event_time: float, offset: int, item: Any) -> None:
        """Hold ``item``, the event at ``offset`` of ``partition``, of time ``event_time``."""
        self.observe(partition, event_time, offset)
        self.waiting.setdefault(partition, collections.deque()).append((event_time, offset, item))
        self.held += 1

    def observe(self, partition: int, event_time: float, offset: int) -> None:
        """The worker has taken the event at ``offset`` of ``partition``, of time ``event_time``."""
        if event_time > self.event_time.get(partition, float("-inf")):
            self.event_time[partition] = event_time
        if offset > self.offset.get(partition, -1):
            self.offset[partition] = offset
        self.seen[partition] = self.clock()

    def release(self, highwater: Callable[[int], int | None], assigned: Iterable[int] = (),
                limit: int | None = None) -> list:
        """The held items now in step (``highwater(p)``: the offset after the last of partition
        ``p``, None when unknown; ``assigned``: the partitions the worker reads, those that gave
        nothing yet included), oldest first, each partition's in the order held; at most ``limit``."""
        if not self.held:
            return []
        slowest = self._slowest(self.event_time, highwater, assigned)
        until = min(float("inf") if slowest is None else slowest + self.max_skew_s, self._others_until(assigned))
        heads = [(queue[0][0], p) for p, queue in self.waiting.items() if queue and queue[0][0] <= until]
        heapq.heapify(heads)
        released = []
        while heads and (limit is None or len(released) < limit):
            _, partition = heapq.heappop(heads)
            queue = self.waiting[partition]
            event_time, offset, item = queue.popleft()
            released.append(item)
            if offset > self.released_offset.get(partition, -1):
                self.released_offset[partition] = offset
            if event_time > self.released_time.get(partition, float("-inf")):
                self.released_time[partition] = event_time
            if queue and queue[0][0] <= until:
                heapq.heappush(heads, (queue[0][0], partition))
        self.held -= len(released)
        return released

    def to_pause(self, assigned: Iterable[int], highwater: Callable[[int], int | None]) -> set[int]:
        """The partitions of ``assigned`` whose fetching to pause now: those more than ``max_skew_s``
        ahead of the slowest that can move, or of the other workers' partitions (see the module's
        docstring); none when nothing holds them back."""
        assigned = set(assigned)
        known = {p: self.event_time[p] for p in assigned if p in self.event_time}
        slowest = self._slowest(known, highwater, assigned)
        others = self._others_until(assigned)
        self.skew = max(known.values()) - slowest if known and slowest is not None and slowest > float("-inf") else 0.0
        until = min(float("inf") if slowest is None else slowest + self.max_skew_s, others)
        return {p for p, t in known.items() if t > until}

    def learned(self, event_times: dict[int, float], partitions: int | None = None,
                offsets: dict[int, int] | None = None) -> None:
        """The newest snapshot's newest event time taken in per partition of the topic (every
        worker's partitions): how far the others have come; ``partitions``: how many the topic has
        (None: unknown; those the learner has nothing of then hold nothing back); ``offsets``: the
        highest offset taken in per partition (how many events per second of event time each has)."""
        now = self.clock()
        if partitions is not None:
            self.partitions = partitions
        for partition, event_time in event_times.items():
            if event_time > self.learned_time.get(partition, float("-inf")):
                self.learned_time[partition] = event_time
                self.learned_moved[partition] = now
                if offsets and partition in offsets:
                    self.learned_offset[partition] = offsets[partition]
                    self.first_learned.setdefault(partition, (offsets[partition], event_time))

    def forget(self, partitions: Iterable[int]) -> None:
        """``partitions`` are no longer this worker's (revoked): their held events are dropped (not
        acknowledged, their next owner reads them again) and they hold nothing back."""
        for partition in partitions:
            self.held -= len(self.waiting.pop(partition, ()))
            self.event_time.pop(partition, None)
            self.offset.pop(partition, None)
            self.released_offset.pop(partition, None)
            self.released_time.pop(partition, None)
            self.seen.pop(partition, None)
            self.assigned_at.pop(partition, None)

    def reset(self) -> None:
        """Forget every partition and drop every held event (a rebalance: see :meth:`forget`)."""
        self.forget(set(self.event_time) | set(self.waiting) | set(self.assigned_at))
        self.unknown_since.clear()

    def _others_until(self, assigned: Iterable[int]) -> float:
        """The newest event time to release for the other workers' partitions (infinity: none
        holds anything back; see the module's docstring)."""
        assigned, now = set(assigned), self.clock()
        if not assigned:
            return float("inf")
        for p in range(self.partitions or 0):
            if p not in assigned and p not in self.learned_time:
                if now - self.unknown_since.setdefault(p, now) < self.idle_s:
                    return float("-inf")
        others = [p for p in self.learned_time if p not in assigned and now - self.learned_moved[p] < self.idle_s]
        lags = [self.released_time.get(p, self.learned_time[p]) - self.learned_time[p] for p in assigned
                if p in self.learned_time]
        if not others or not lags:
            return float("inf")
        records = [max(0, self.released_offset[p] - self.learned_offset[p]) for p in assigned
                   if p in self.released_offset and p in self.learned_offset]
        behind, lag_records = self._recent_lag(now, max(0.0, max(lags)), sum(records) / len(records) if records else None)

        def taking(p: int) -> float:  # where partition p is taking events, as far as the learner tells
            rate = self._rate(p)
            if lag_records is None or rate is None:
                return self.learned_time[p] + behind
            return self.learned_time[p] + lag_records / rate
        return min(taking(p) for p in others) + self.max_skew_s

    def _recent_lag(self, now: float, behind: float, lag_records: float | None) -> tuple[float, float | None]:
        """This worker's lag behind the learner (in event time; in events per partition, None:
        unknown), the most of the last ``idle_s``: while it waits for the others its lag shrinks,
        theirs does not, and a lag taken as it is then would hold it back all the more."""
        history = self._lags
        history.append((now, behind, lag_records))
        while history and now - history[0][0] > self.idle_s:
            history.popleft()
        known = [lag for _, _, lag in history if lag is not None]
        return max(b for _, b, _ in history), (max(known) if known else None)

    def _rate(self, partition: int) -> float | None:
        """Events per second of event time on ``partition``, from what the learner has of it."""
        if partition not in self.learned_offset or partition not in self.first_learned:
            return None
        first_offset, first_time = self.first_learned[partition]
        events, seconds = self.learned_offset[partition] - first_offset, self.learned_time[partition] - first_time
        return events / seconds if events > 0 and seconds > 0 else None

    def _slowest(self, event_times: dict[int, float], highwater, assigned: Iterable[int] = ()) -> float | None:
        """The event time of the slowest of these partitions that can move (None: none can; minus
        infinity: an assigned partition's first events may still come)."""
        now = self.clock()
        for p in assigned:
            if p not in self.event_time:
                since = self.assigned_at.setdefault(p, now)
                if now - since < self.idle_s and highwater(p) != 0:
                    return float("-inf")
        moving = [t for p, t in event_times.items()
                  if now - self.seen[p] < self.idle_s and self._has_more(p, highwater(p))]
        return min(moving) if moving else None

    def _has_more(self, partition: int, highwater: int | None) -> bool:
        return highwater is None or self.offset[partition] + 1 < highwater

    def __repr__(self) -> str:
        return f"EventTimeAlignment(max_skew_s={self.max_skew_s}, idle_s={self.idle_s})"
