"""Central learning: a bound on how stale the replica that scores may be.

In central learning (``docs/scaleout.md``) scorers predict with snapshots of a model that one
learner trains on the examples they send. Nothing else ties the two rates together: with a backlog
in Kafka the scorers run through it far faster than the learner learns, and the replicas then score
with models a backlog behind (measured: a median of 100,000+ examples), which costs most of what one
model was meant to win. A :class:`StalenessBound` ties them: it remembers the offset, in the
examples topic, of the last example this worker's scorer has had confirmed, and how many it has
sent that are not confirmed yet; before each batch :meth:`StalenessBound.hold` waits while the
newest snapshot lacks more than ``max_examples`` of them, for at most ``max_wait_s`` (a learner
that is down or moving must not stop the scoring for good: after the longest wait the batch is
scored with the snapshot there is, and the time-out is counted). The lag, in examples, is that of the examples topic: the other workers'
examples before this worker's count too, since the learner takes them in first.

Nor is a replica ever more examples behind than its snapshot has taken in: the bound is
``max_examples`` or the examples topic's offset the snapshot has taken in plus one, whichever is
smaller. Before the first snapshot it is 0: a replica that has learned nothing scores every
transaction alike (a fresh model's 0.5), so the worker scores one transaction (the scorer submits
the first alone) and waits for the learner's first snapshot rather than scoring ``max_examples``
more; a snapshot that has taken in 10 examples lets the scorer go 10 ahead of it, not
``max_examples``, so a fresh deployment's first scores come from models that have learned at least
half of what came before them. So the scores are at most about ``max_examples``
plus one batch of examples stale while the learner keeps up, and the scoring slows to the
learner's pace when it does not. ``max_examples`` must leave the learner room to write a snapshot: it writes one every ``SNAPSHOT_EVERY`` examples or
``SNAPSHOT_EVERY_S`` seconds, so a bound below ``SNAPSHOT_EVERY`` holds each batch until the time
bound fires.

>>> import asyncio
>>> bound = StalenessBound(max_examples=100, max_wait_s=0.05)
>>> bound.confirmed(499)  # this worker's examples are confirmed up to offset 499
>>> bound.lag(None), bound.lag(449), bound.lag(499)  # no snapshot yet; 50 behind; caught up
(500, 50, 0)
>>> asyncio.run(bound.hold(lambda: None)) >= 0.05  # no snapshot yet: the bound is 0, it waits its longest
True
>>> asyncio.run(bound.hold(lambda: 449))  # within the bound: no wait
0.0
>>> held = asyncio.run(bound.hold(lambda: 300))  # 199 behind: waits its longest, then lets the batch go
>>> held >= 0.05, bound.timeouts
(True, 2)
>>> patient = StalenessBound(max_examples=100, max_wait_s=30.0)
>>> patient.confirmed(499)
>>> snapshots = iter([300, 300, 450])  # the learner's next snapshot comes while the batch waits
>>> held = asyncio.run(patient.hold(lambda: next(snapshots)))
>>> 0 < held < 30.0, patient.timeouts
(True, 0)
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from app import metrics

log = logging.getLogger(__name__)


class StalenessBound:
    """Holds a worker's next batch while the newest snapshot lags the examples it sent by more than
    ``max_examples`` (see the module's docstring), checking every ``poll_s``, for at most
    ``max_wait_s`` per batch."""

    def __init__(self, max_examples: int, max_wait_s: float, poll_s: float = 0.002) -> None:
        if max_examples < 0 or max_wait_s < 0:
            raise ValueError(f"a staleness bound needs max_examples >= 0 and max_wait_s >= 0, "
                             f"not {max_examples} and {max_wait_s}")
        self.max_examples, self.max_wait_s, self.poll_s = max_examples, max_wait_s, poll_s
        self.sent_offset = -1  # the highest offset of this worker's examples the broker has confirmed
        self.unconfirmed = 0  # examples sent, their confirmation not come yet
        self.timeouts = 0
        self._warned = False

    def track(self, future) -> None:
        """Take the offset of an example's send once the broker confirms it (``future``'s result has
        ``offset``, as Kafka's record metadata does)."""
        def done(f) -> None:
            self.unconfirmed -= 1
            if not f.cancelled() and f.exception() is None:
                self.confirmed(f.result().offset)
        self.unconfirmed += 1
        if future.done():
            done(future)
        else:
            future.add_done_callback(done)

    def confirmed(self, offset: int) -> None:
        """An example of this worker's is in the examples topic at ``offset``."""
        if offset > self.sent_offset:
            self.sent_offset = offset

    def lag(self, snapshot_offset: int | None) -> int:
        """The examples the snapshot that has taken in the examples topic up to ``snapshot_offset``
        (None: no snapshot yet) lacks: up to this worker's last confirmed one, and those it sent
        that are not confirmed yet."""
        taken_in = -1 if snapshot_offset is None else snapshot_offset
        return max(self.sent_offset - taken_in, 0) + self.unconfirmed

    async def hold(self, snapshot_offset: Callable[[], int | None]) -> float:
        """Wait while the newest snapshot (``snapshot_offset()``: the examples offset it has taken in
        up to) lags by more than the bound, at most ``max_wait_s``; the seconds waited."""
        offset = snapshot_offset()
        lag, limit = self.lag(offset), self._limit(offset)
        if lag <= limit:
            metrics.REPLICA_LAG.set(lag)
            self._warned = False
            return 0.0
        start = time.monotonic()
        deadline = start + self.max_wait_s
        while lag > limit and time.monotonic() < deadline:
            await asyncio.sleep(self.poll_s)
            offset = snapshot_offset()
            lag, limit = self.lag(offset), self._limit(offset)
        held = time.monotonic() - start
        metrics.REPLICA_LAG.set(lag)
        metrics.STALENESS_HELD.inc(held)
        if lag > limit:
            self.timeouts += 1
            metrics.STALENESS_TIMEOUTS.inc()
            if not self._warned:
                log.warning("the newest model snapshot is %d examples behind this worker's (bound %d) after "
                            "waiting %.1f s: scoring with it (is the learner running? see fraud_learner_lag)",
                            lag, limit, held)
                self._warned = True
        else:
            self._warned = False
        return held

    def _limit(self, snapshot_offset: int | None) -> int:
        """The bound: ``max_examples``, but never more than the examples the snapshot has taken in
        (its offset in the examples topic, plus one), so 0 before the first snapshot (see the
        module's docstring)."""
        return 0 if snapshot_offset is None else min(self.max_examples, snapshot_offset + 1)

    def __repr__(self) -> str:
        return f"StalenessBound(max_examples={self.max_examples}, max_wait_s={self.max_wait_s})"
