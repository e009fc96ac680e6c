"""The central learner's bookkeeping: which examples to learn, when to snapshot, its own record.

In central learning (``docs/scaleout.md``) one learner reads the examples topic (one partition, so
one order) and predicts then learns each example in its model. :class:`LearnerBook` decides, for
each example read (:meth:`LearnerBook.take`), whether the model learns it:

* ``"duplicate"``: its source position (the transaction or label message that produced it) is at
  or below the highest one already taken in for that source partition. Scorers write an example
  again when they re-score redelivered messages after a restart, and a learner taking over reads
  again the examples after its snapshot: either way the model learns each labelled event once.
  Scorers write each source partition's examples in its order, so one number per source partition
  is enough.
* ``"subsampled"``: a genuine example that negative subsampling leaves out
  (:func:`app.learning.subsampling.keep`, the same choice in every process). It is counted as
  received (K, the version, the positions) but not predicted nor learned: reading it is all it costs.
* ``"learn"``: predict it, then learn it; the prediction goes into the learner's prequential record
  (:meth:`LearnerBook.record`, an :class:`~app.learning.evaluation.PrequentialEvaluator` of the
  probabilities corrected for the sample rate). With rate 1 and one source partition this record is
  the plain loop's; with subsampling it covers the learned examples only (every fraud and a share
  ``rate`` of the genuine ones), so its precision and PR-AUC are those of a sample where frauds are
  ``1 / rate`` times as common as in the stream; the scores' own metrics tell the stream's.

A snapshot is due (:meth:`LearnerBook.due`) once ``every`` examples were received since the last,
or ``every_s`` seconds (of ``clock``) passed since it with at least one received; duplicates do
not count, so a learner reading only duplicates writes nothing. :meth:`LearnerBook.snapshot` makes
the :class:`~app.learning.snapshots.Snapshot` of the model bytes given, with the positions and
counts of that moment, and starts the next count; a new owner starts from it with
:meth:`LearnerBook.restore`.

Nothing here reads Kafka or runs a model: the learner agent (:mod:`app.agents.learner`) does, and
calls this for every decision.

>>> from app.learning.examples import Example
>>> book = LearnerBook(sample_rate=1.0, every=2, every_s=None)
>>> first = Example("tx-1", 0.0, {"V1": 1.0}, 1, ("transactions", 0, 10))
>>> book.take(first, offset=0), book.take(first, offset=1)  # written twice by a scorer that restarted
('learn', 'duplicate')
>>> _ = book.record(1, 0.5); book.due()
False
>>> book.take(Example("tx-2", 0.0, {"V1": 0.0}, 0, ("labels", 0, 3)), offset=2); book.due()
'learn'
True
>>> snapshot = book.snapshot("lr", generation=0, model=b"<model bytes>")
>>> snapshot.version, snapshot.examples_offset, snapshot.positions, book.due()
('lr-g0@2', 2, {'transactions:0': 10, 'labels:0': 3}, False)
>>> taken_over = LearnerBook(sample_rate=1.0, every=2, every_s=None)
>>> taken_over.restore(snapshot); taken_over.take(first, offset=0)
'duplicate'
"""
from __future__ import annotations

import logging
import math
import time
from typing import Callable

from app.learning.evaluation import PrequentialEvaluator
from app.learning.examples import Example
from app.learning.snapshots import Snapshot, version_of
from app.learning.subsampling import check_rate, correct, keep

log = logging.getLogger(__name__)

__all__ = ["DUPLICATE", "LEARN", "LearnerBook", "SUBSAMPLED"]

LEARN, DUPLICATE, SUBSAMPLED = "learn", "duplicate", "subsampled"


class LearnerBook:
    """What the central learner has taken in and what it owes (see the module's docstring).

    ``sample_rate`` is the share of genuine examples learned; ``every`` (examples received) and
    ``every_s`` (seconds of ``clock``; None: no time bound) set when a snapshot is due; ``window``
    and ``threshold`` are those of the prequential record."""

    def __init__(self, sample_rate: float = 1.0, every: int = 1000, every_s: float | None = 1.0, *,
                 clock: Callable[[], float] = time.monotonic, window: int = 10_000, threshold: float = 0.5) -> None:
        if every < 1:
            raise ValueError(f"snapshots need every >= 1 examples, got {every}")
        if every_s is not None and not every_s > 0:
            raise ValueError(f"snapshots every_s must be > 0 seconds (or None), got {every_s}")
        self.sample_rate = check_rate(sample_rate)
        self.every, self.every_s, self.clock = every, every_s, clock
        self.positions: dict[str, int] = {}  # "topic:partition" -> highest source offset taken in
        self.event_times: dict[str, float] = {}  # "topic:partition" -> newest event time taken in
        self.examples_offset = -1  # the last offset of the examples topic taken in
        self.received = 0  # examples taken in (learned or subsampled): the model's count of labelled events
        self.learned = 0
        self.counts = {LEARN: 0, DUPLICATE: 0, SUBSAMPLED: 0}  # decisions since this book was made
        self.evaluator = PrequentialEvaluator(window, threshold)
        self.snapshot_received = 0  # `received` at the last snapshot (or the restore)
        self.snapshot_at = clock()

    def take(self, example: Example, offset: int) -> str:
        """The decision on ``example``, read at ``offset`` of the examples topic: :data:`LEARN`,
        :data:`DUPLICATE` or :data:`SUBSAMPLED`; the positions and counts move accordingly."""
        if offset > self.examples_offset:
            self.examples_offset = offset
        source, source_offset = example.source_partition, example.source[2]
        if source_offset <= self.positions.get(source, -1):
            decision = DUPLICATE
        else:
            self.positions[source] = source_offset
            if example.event_time > self.event_times.get(source, float("-inf")):
                self.event_times[source] = example.event_time
            self.received += 1
            if keep(example.transaction_id, example.label, self.sample_rate):
                self.learned += 1
                decision = LEARN
            else:
                decision = SUBSAMPLED
        self.counts[decision] += 1
        return decision

    def passed(self, offset: int) -> None:
        """The example at ``offset`` of the examples topic could not be read: it is passed over (its
        offset counts as taken in, nothing else moves)."""
        if offset > self.examples_offset:
            self.examples_offset = offset

    def unlearned(self) -> None:
        """The model could not learn an example :meth:`take` said to learn (the model host refused
        it): it is not counted as learned."""
        self.learned -= 1

    def record(self, label: int, probability: float) -> bool:
        """The learner's prediction of a learned example, before it learned it, into its record
        (corrected for the sample rate: decisions at the threshold are the stream's); whether its
        decision at the threshold was wrong (the learner's error stream).

        >>> book = LearnerBook(threshold=0.5)
        >>> book.record(1, 0.7), book.record(1, 0.2), book.record(0, 0.2)
        (False, True, False)
        """
        corrected = correct(probability, self.sample_rate)
        self.evaluator.update(label, corrected)
        return (corrected >= self.evaluator.threshold) != bool(label)

    def due(self) -> bool:
        """Whether a snapshot is due (see the module's docstring)."""
        since = self.received - self.snapshot_received
        if since >= self.every:
            return True
        return since > 0 and self.every_s is not None and self.clock() - self.snapshot_at >= self.every_s

    def snapshot(self, model_name: str, generation: int, model: bytes, errors: bytes = b"") -> Snapshot:
        """The snapshot of ``model`` (the learner's checkpoint bytes, as of every example taken in so
        far) and ``errors`` (its error monitor's, as of the same example) with this book's positions,
        newest event times per source partition and counts; the next one is due from now."""
        self.snapshot_received, self.snapshot_at = self.received, self.clock()
        return Snapshot(model_name=model_name, version=version_of(model_name, generation, self.received),
                        examples_offset=self.examples_offset, positions=dict(self.positions),
                        received=self.received, sample_rate=self.sample_rate, model=model, learned=self.learned,
                        errors=errors, event_times=dict(self.event_times))

    def restore(self, snapshot: Snapshot) -> None:
        """Start from ``snapshot``: its positions, offset and counts (the model is the caller's to
        load). A snapshot learned with another sample rate is taken as it is, with a warning: its
        model goes on learning at this book's rate, and the snapshots from now on carry this rate."""
        if not math.isclose(snapshot.sample_rate, self.sample_rate):
            log.warning("the snapshot %s learned with sample rate %g; the learner goes on at %g", snapshot.version,
                        snapshot.sample_rate, self.sample_rate)
        self.positions = dict(snapshot.positions)
        self.event_times = dict(snapshot.event_times)
        self.examples_offset = snapshot.examples_offset
        self.received, self.learned = snapshot.received, snapshot.learned
        self.snapshot_received, self.snapshot_at = snapshot.received, self.clock()

    def __repr__(self) -> str:
        return (f"LearnerBook(received={self.received}, learned={self.learned}, examples_offset={self.examples_offset}, "
                f"sample_rate={self.sample_rate:g})")
