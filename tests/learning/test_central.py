import random

import pytest

from app.learning.central import DUPLICATE, LEARN, SUBSAMPLED, LearnerBook
from app.learning.examples import Example
from app.learning.learner import OnlineLearner
from app.learning.pipeline import model_factory
from app.learning.subsampling import correct, keep


def examples(n: int, partitions: int = 2, seed: int = 5) -> list[Example]:
    """n labelled examples from `partitions` transaction partitions, each partition's in source order."""
    rng = random.Random(seed)
    next_offset = [0] * partitions
    out = []
    for i in range(n):
        partition = rng.randrange(partitions)
        label = 1 if rng.random() < 0.1 else 0
        x = {"V1": rng.gauss(2.0 * label, 1.0), "V2": rng.gauss(0.0, 1.0), "Amount": rng.uniform(0, 100)}
        out.append(Example(f"tx-{i:09d}", float(i), x, label, ("transactions", partition, next_offset[partition])))
        next_offset[partition] += 1
    return out


class Central:
    """A learner as the agent drives it: the book decides, the model predicts then learns."""

    def __init__(self, rate: float = 1.0, every: int = 50):
        self.book = LearnerBook(sample_rate=rate, every=every, every_s=None)
        self.model = OnlineLearner(model_factory(kind="lr"))
        self.probabilities: dict[str, float] = {}
        self.snapshots = []

    def read(self, stream: list[Example], start: int = 0, stop: int | None = None) -> None:
        for offset in range(start, len(stream) if stop is None else stop):
            example = stream[offset]
            if self.book.take(example, offset) == LEARN:
                p = self.model.predict_proba(example.features)
                self.model.learn(example.features, example.label)
                self.book.record(example.label, p)
                self.probabilities[example.transaction_id] = p
            if self.book.due():
                self.snapshots.append(self.book.snapshot(self.model.name, self.model.generation, self.model.to_checkpoint()))

    @classmethod
    def taking_over(cls, snapshot, rate: float = 1.0, every: int = 50) -> "Central":
        new = cls(rate, every)
        new.book.restore(snapshot)
        new.model = OnlineLearner.from_checkpoint(snapshot.model)
        return new


def plain_loop(stream: list[Example], rate: float = 1.0):
    model = OnlineLearner(model_factory(kind="lr"))
    probabilities = {}
    for example in stream:
        if keep(example.transaction_id, example.label, rate):
            probabilities[example.transaction_id] = model.predict_proba(example.features)
            model.learn(example.features, example.label)
    return model, probabilities


def test_one_learner_is_the_plain_loop():
    stream = examples(400)
    central = Central()
    central.read(stream)
    model, probabilities = plain_loop(stream)
    assert central.probabilities == probabilities  # bit for bit
    assert central.book.received == central.book.learned == 400
    assert central.book.evaluator.count == 400


def test_duplicates_from_a_scorer_that_restarted_are_learned_once():
    stream = examples(300)
    # the scorer of partition 1 restarted after writing its examples up to source offset 60: it writes
    # them again from its committed offset 40, after which it goes on
    rewritten = [e for e in stream if e.source[1] == 1 and 40 <= e.source[2] <= 60]
    cut = next(i for i, e in enumerate(stream) if e.source[1] == 1 and e.source[2] == 60) + 1
    with_duplicates = stream[:cut] + rewritten + stream[cut:]
    central = Central()
    central.read(with_duplicates)
    _, probabilities = plain_loop(stream)
    assert central.probabilities == probabilities
    assert central.book.counts[DUPLICATE] == len(rewritten) == 21


def test_a_new_owner_resumes_from_the_snapshot_without_learning_twice():
    stream = examples(500)
    first = Central(every=50)
    first.read(stream, stop=437)  # crashed after 437 examples; its last snapshot covers 400
    last = first.snapshots[-1]
    assert last.examples_offset == 399 and last.received == 400
    second = Central.taking_over(last)
    second.read(stream, start=300)  # resumed at an offset committed before the snapshot: read from 300
    _, probabilities = plain_loop(stream)
    merged = {**{k: v for k, v in first.probabilities.items() if int(k[3:]) < 400}, **second.probabilities}
    assert merged == probabilities
    assert second.book.counts[DUPLICATE] == 100 and second.book.counts[LEARN] == 100
    assert second.book.received == 500


def test_subsampling_learns_every_fraud_and_the_kept_genuine_examples():
    stream = examples(2000)
    central = Central(rate=0.1)
    central.read(stream)
    _, probabilities = plain_loop(stream, rate=0.1)
    assert central.probabilities == probabilities
    frauds = sum(e.label for e in stream)
    assert central.book.counts[LEARN] == len(probabilities) == frauds + sum(
        keep(e.transaction_id, 0, 0.1) for e in stream if e.label == 0)
    assert central.book.counts[SUBSAMPLED] == 2000 - len(probabilities)
    assert central.book.received == 2000
    assert central.snapshots[0].sample_rate == 0.1 and central.snapshots[0].version == "lr-g0@50"


def test_the_record_holds_corrected_probabilities():
    book = LearnerBook(sample_rate=0.2, every=10, every_s=None, threshold=0.5)
    book.record(1, 0.6)  # 0.6 learned at r = 0.2 is 0.2308 in the stream: below the threshold
    report = book.evaluator.report()["cumulative"]
    assert report["count"] == 1 and report["recall"] == 0.0
    assert correct(0.6, 0.2) < 0.5


def test_snapshot_due_every_k_received_or_t_seconds():
    now = [0.0]
    book = LearnerBook(every=3, every_s=1.0, clock=lambda: now[0])
    example = Example("tx-1", 0.0, {}, 0, ("transactions", 0, 0))
    assert not book.due()
    now[0] = 5.0
    assert not book.due()  # nothing received: nothing to snapshot
    book.take(example, 0)
    assert book.due()  # T passed with something received
    book.snapshot("lr", 0, b"")
    now[0] = 5.5
    for offset in (1, 2):
        book.take(Example(f"tx-{offset}", 0.0, {}, 0, ("transactions", 0, offset)), offset)
    book.take(example, 3)  # a duplicate does not count
    assert not book.due()
    book.take(Example("tx-9", 0.0, {}, 0, ("transactions", 0, 9)), 4)
    assert book.due()  # K = 3 received
    assert book.snapshot("lr", 0, b"").examples_offset == 4


def test_restore_takes_the_snapshots_positions_and_counts():
    book = LearnerBook(every=2, every_s=None)
    for offset, source in enumerate([("transactions", 0, 5), ("labels", 1, 2), ("transactions", 0, 6)]):
        book.take(Example(f"tx-{offset}", 0.0, {}, 1, source), offset)
    snapshot = book.snapshot("arf+lr", 3, b"m")
    other = LearnerBook(every=2, every_s=None)
    other.restore(snapshot)
    assert (other.positions, other.examples_offset, other.received, other.learned) == \
        ({"transactions:0": 6, "labels:1": 2}, 2, 3, 3)
    assert not other.due()
    assert snapshot.version == "arf+lr-g3@3"


@pytest.mark.parametrize("kwargs", [dict(every=0), dict(every_s=0.0), dict(sample_rate=0.0)])
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(ValueError):
        LearnerBook(**kwargs)


def test_the_book_keeps_each_source_partitions_newest_event_time_and_a_new_owner_restores_it():
    book = LearnerBook(every=100, every_s=None)
    for offset, (source, event_time) in enumerate([(("transactions", 0, 1), 10.0), (("transactions", 0, 2), 8.0),
                                                     (("transactions", 1, 1), 30.0), (("transactions", 1, 1), 99.0)]):
        book.take(Example(f"tx-{offset}", event_time, {"V1": 0.0}, 0, source), offset)
    assert book.event_times == {"transactions:0": 10.0, "transactions:1": 30.0}  # the duplicate moves nothing
    snapshot = book.snapshot("lr", generation=0, model=b"")
    taken_over = LearnerBook(every=100, every_s=None)
    taken_over.restore(snapshot)
    assert taken_over.event_times == {"transactions:0": 10.0, "transactions:1": 30.0}
