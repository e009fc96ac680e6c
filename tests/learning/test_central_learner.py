import asyncio
import random
import time

import pytest

from app.drift.detectors import error_monitor
from app.drift.learner_errors import CENTRAL, LearnerErrorWatch
from app.learning.central import LearnerBook
from app.learning.central_learner import KEY, CentralLearner
from app.learning.examples import Example, encode
from app.learning.learner import OnlineLearner
from app.learning.model_host import LocalHost
from app.learning.pipeline import model_factory
from app.learning.snapshots import decode as decode_snapshot
from app.state.signing import Signer

SIGNER = Signer("k" * 32)


def examples(n: int, seed: int = 7) -> list[Example]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = 1 if rng.random() < 0.15 else 0
        out.append(Example(f"tx-{i:09d}", float(i), {"V1": rng.gauss(2.0 * label, 1.0), "V2": rng.random()}, label,
                           ("transactions", i % 3, i // 3)))
    return out


class Recording(LocalHost):
    """A local model host that remembers each step's result, by the features' identity."""

    def __init__(self):
        super().__init__()
        self.steps: list[tuple[dict, float]] = []

    def submit(self, ops, lane=None):
        future = super().submit(ops, lane)
        for op, result in zip(ops, future.result()):
            if op[0] == "step":
                self.steps.append((op[2], result))
        return future


class Kafka:
    """The examples topic and the snapshots topic, in memory."""

    def __init__(self, stream: list[Example]):
        self.examples = [encode(e) for e in stream]
        self.snapshots: list[bytes] = []

    async def publish(self, key, value):
        self.snapshots.append(value)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def last_snapshots(self):
        return self.snapshots[::-1][:5]

    async def read_back(self, start, end):
        for offset in range(start, min(end, len(self.examples))):
            yield offset, self.examples[offset]

    def batches(self, start: int, stop: int, size: int = 20):
        for first in range(start, stop, size):
            yield [(offset, self.examples[offset]) for offset in range(first, min(stop, first + size))]


def learner(kafka: Kafka, host: LocalHost, every: int = 50, rate: float = 1.0) -> CentralLearner:
    async def start_host():
        return host

    return CentralLearner(start_host, lambda: LearnerBook(sample_rate=rate, every=every, every_s=None),
                          model_factory(kind="lr"), signer=SIGNER, last_snapshots=kafka.last_snapshots,
                          read_back=kafka.read_back, publish=kafka.publish)


def plain_loop(stream: list[Example]) -> list[float]:
    model = OnlineLearner(model_factory(kind="lr"))
    out = []
    for e in stream:
        out.append(model.predict_proba(e.features))
        model.learn(e.features, e.label)
    return out


def test_the_learner_predicts_as_the_plain_loop_and_snapshots_every_k():
    stream = examples(230)
    kafka, host = Kafka(stream), Recording()
    central = learner(kafka, host, every=50)

    async def run():
        for batch in kafka.batches(0, 230):
            await central.learn(batch)

    asyncio.run(run())
    assert [p for _, p in host.steps] == plain_loop(stream)
    versions = [decode_snapshot(blob, SIGNER).version for blob in kafka.snapshots]
    assert versions == ["lr-g0@60", "lr-g0@120", "lr-g0@180", "lr-g0@230"]  # due at 50, taken at the batch end
    report = asyncio.run(central.report())
    assert report["prequential"]["cumulative"]["count"] == report["examples_received"] == 230
    assert report["version"] == report["last_snapshot"]["version"] == "lr-g0@230"


def test_a_new_owner_restores_the_last_snapshot_and_learns_each_example_once():
    stream = examples(400)
    kafka = Kafka(stream)
    first_host, second_host = Recording(), Recording()
    first = learner(kafka, first_host, every=100)

    async def first_owner():  # learns 0..329, then dies without a last snapshot; it had committed up to 300
        for batch in kafka.batches(0, 330):
            await first.learn(batch)

    asyncio.run(first_owner())
    last = decode_snapshot(kafka.snapshots[-1], SIGNER)
    assert last.examples_offset == 299
    second = learner(kafka, second_host, every=100)

    async def second_owner():  # its consumer resumes at the committed offset 300... or at 320
        for batch in kafka.batches(320, 400):
            await second.learn(batch)

    asyncio.run(second_owner())
    assert second.restored_from == last.version and second.caught_up == 20  # 300..319 read back
    learned = [p for _, p in first_host.steps[:300]] + [p for _, p in second_host.steps]
    assert learned == plain_loop(stream)  # each example learned once, by a model that learned all before it
    assert second.book.received == 400


def test_the_report_says_which_snapshot_a_new_owner_started_from_and_when_it_wrote_its_own():
    stream = examples(160)
    kafka = Kafka(stream)
    first = learner(kafka, Recording(), every=50)
    assert asyncio.run(first.report()) is None  # not running here yet
    asyncio.run(first.learn(next(kafka.batches(0, 60, size=60))))
    second = learner(kafka, Recording(), every=50)
    asyncio.run(second.learn(next(kafka.batches(60, 80, size=20))))
    report = asyncio.run(second.report())
    assert report["restored_from"] == "lr-g0@60" and report["caught_up"] == 0
    assert report["last_snapshot"] == {"version": "lr-g0@60", "examples_offset": 59, "written_at": None}  # not its own
    before = time.time()
    asyncio.run(second.learn(next(kafka.batches(80, 120, size=40))))
    report = asyncio.run(second.report())
    assert report["last_snapshot"]["version"] == "lr-g0@120" and before <= report["last_snapshot"]["written_at"]
    assert report["examples_received"] == 120 and report["prequential"]["cumulative"]["count"] == 60  # its own predictions


def test_redelivered_examples_after_the_snapshot_are_duplicates():
    stream = examples(200)
    kafka = Kafka(stream)
    first = learner(kafka, Recording(), every=100)
    asyncio.run(first.learn(next(kafka.batches(0, 150, size=150))))
    second_host = Recording()
    second = learner(kafka, second_host, every=100)

    async def again():  # the consumer resumes before the snapshot's offset: those are skipped
        for batch in kafka.batches(50, 200):
            await second.learn(batch)

    asyncio.run(again())
    assert second.book.counts["duplicate"] == 100 and len(second_host.steps) == 50


def test_revocation_writes_a_last_snapshot_and_drops_the_model():
    stream = examples(30)
    kafka, host = Kafka(stream), Recording()
    central = learner(kafka, host, every=1000)

    async def run():
        await central.learn(next(kafka.batches(0, 30, size=30)))
        assert not kafka.snapshots
        await central.revoked({"examples": {0}, "transactions": {1}})

    asyncio.run(run())
    assert decode_snapshot(kafka.snapshots[-1], SIGNER).received == 30
    assert not central.active and KEY not in host.learners.learners


def test_other_partitions_revoked_change_nothing():
    kafka = Kafka(examples(5))
    central = learner(kafka, Recording())
    asyncio.run(central.learn(next(kafka.batches(0, 5))))
    asyncio.run(central.revoked({"transactions": {0}}))
    assert central.active and not kafka.snapshots


def test_a_forged_snapshot_is_refused_and_the_one_before_restored():
    stream = examples(120)
    kafka = Kafka(stream)
    first = learner(kafka, Recording(), every=50)
    asyncio.run(first.learn(next(kafka.batches(0, 60, size=60))))
    good = decode_snapshot(kafka.snapshots[-1], SIGNER)
    kafka.snapshots.append(Signer("f" * 32).sign(b"forged", b"x"))
    second = learner(kafka, Recording(), every=50)
    asyncio.run(second.learn(next(kafka.batches(60, 120, size=60))))
    assert second.restored_from == good.version


def test_an_unreadable_example_is_passed_over():
    stream = examples(10)
    kafka = Kafka(stream)
    kafka.examples[4] = b"not an example"
    host = Recording()
    central = learner(kafka, host)
    asyncio.run(central.learn(next(kafka.batches(0, 10))))
    assert len(host.steps) == 9 and central.book.examples_offset == 9


def test_without_a_snapshot_a_new_owner_reads_everything_before_its_first_offset():
    stream = examples(80)
    kafka, host = Kafka(stream), Recording()
    central = learner(kafka, host, every=1000)
    asyncio.run(central.learn(next(kafka.batches(30, 80, size=50))))
    assert central.caught_up == 30 and [p for _, p in host.steps] == plain_loop(stream)


@pytest.mark.parametrize("rate", [0.2])
def test_subsampling_learns_the_kept_examples_and_counts_all(rate):
    from app.learning.subsampling import keep

    stream = examples(300)
    kafka, host = Kafka(stream), Recording()
    central = learner(kafka, host, every=100, rate=rate)
    asyncio.run(central.learn(next(kafka.batches(0, 300, size=300))))
    kept = [e for e in stream if keep(e.transaction_id, e.label, rate)]
    assert [p for _, p in host.steps] == plain_loop(kept)
    snapshot = decode_snapshot(kafka.snapshots[-1], SIGNER)
    assert snapshot.received == 300 and snapshot.learned == len(kept) and snapshot.sample_rate == rate


# --- the learner's error stream ---------------------------------------------------------------------
def concept_examples(n: int, flips: tuple[int, ...] = (), noise: float = 0.02, seed: int = 3) -> list[Example]:
    """``n`` examples whose label is ``V1 > 0.5`` (the opposite after each odd number of ``flips``
    passed), a share ``noise`` of them the other label: an LR learns the rule and errs on about the
    noise until a flip, then on most examples until it has learned the new rule."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        v1 = rng.gauss(0.0, 1.0)
        label = int(v1 > 0.5) ^ (sum(i >= f for f in flips) % 2)
        if rng.random() < noise:
            label = 1 - label
        out.append(Example(f"tx-{i:09d}", float(i), {"V1": v1, "V2": rng.random()}, label, ("transactions", 0, i)))
    return out


class Alerts:
    """The drift-alerts topic in memory, in one log with the snapshots written (to see their order)."""

    def __init__(self, kafka: Kafka):
        self.sent: list = []
        self.log: list[tuple[str, object]] = []
        publish = kafka.publish

        async def snapshot(key, value):
            self.log.append(("snapshot", decode_snapshot(value, SIGNER).examples_offset))
            return await publish(key, value)

        kafka.publish = snapshot

    async def send(self, alerts):
        self.sent += alerts
        self.log += [("alert", a.offset) for a in alerts]


def watching(kafka: Kafka, host: LocalHost, every: int = 500, settle: int = 200) -> tuple[CentralLearner, Alerts]:
    """A learner of ``kafka`` that watches its errors as the service does (ADWIN of the default delta
    and clock, alarming on increases, once its model learned ``settle`` examples)."""
    alerts = Alerts(kafka)

    async def start_host():
        return host

    central = CentralLearner(start_host, lambda: LearnerBook(every=every, every_s=None), model_factory(kind="lr"),
                             signer=SIGNER, last_snapshots=kafka.last_snapshots, read_back=kafka.read_back,
                             publish=kafka.publish, error_watch=lambda: LearnerErrorWatch(
                                 lambda: error_monitor(delta=0.002, clock=32, settle=settle)),
                             send_alerts=alerts.send)
    return central, alerts


def run(central: CentralLearner, kafka: Kafka, start: int, stop: int) -> None:
    async def go():
        for batch in kafka.batches(start, stop):
            await central.learn(batch)

    asyncio.run(go())


def test_a_jump_of_the_learners_error_rate_raises_one_alert_after_it():
    stream = concept_examples(3000, flips=(2000,))
    kafka = Kafka(stream)
    central, alerts = watching(kafka, Recording(), every=20)  # a snapshot at the end of every batch
    run(central, kafka, 0, 3000)
    assert len(alerts.sent) == 1
    alert = alerts.sent[0]
    assert 2000 < alert.offset < 2100  # found within 100 examples of the flip
    assert (alert.stream, alert.partition, alert.mitigation) == ("error", CENTRAL, "none")
    assert alert.transaction_id == stream[alert.offset].transaction_id and alert.position == alert.offset + 1
    assert alert.model_version == f"lr-g0@{alert.offset}"  # the model that predicted it had learned the ones before
    assert alert.mean_before < 0.1 < alert.mean_after
    assert alert.description.endswith("examples of the central learner")
    assert central.error_report()["last_alert"]["offset"] == alert.offset
    # sent before the snapshot of its batch: no snapshot holds a window past an alert not sent
    past = next(i for i, (kind, offset) in enumerate(alerts.log) if kind == "snapshot" and offset >= alert.offset)
    assert alerts.log[past - 1] == ("alert", alert.offset)


def test_a_steady_error_rate_raises_no_alert():
    stream = concept_examples(3000)
    kafka = Kafka(stream)
    central, alerts = watching(kafka, Recording())
    run(central, kafka, 0, 3000)
    assert alerts.sent == []
    report = central.error_report()
    assert report["values"] == 3000 and report["waiting"] == 200  # fed every prediction, the first 200 settling
    assert 0.0 < central.book.evaluator.snapshot().report()["cumulative"]["count"] == 3000


def test_a_new_owner_alerts_where_an_uninterrupted_learner_does():
    """The window goes with the snapshot: the alerts of a learner that died and its successor are
    those of one that never stopped (the successor reads back the first change without alerting again:
    its alert was sent before its batch was acknowledged) and the second change is found at the
    same example."""
    stream = concept_examples(4000, flips=(1500, 3000))
    kafka = Kafka(stream)
    whole, whole_alerts = watching(kafka, Recording())
    run(whole, kafka, 0, 4000)
    expected = [(a.offset, a.position, a.model_version, a.mean_before, a.mean_after) for a in whole_alerts.sent]
    assert len(expected) == 2 and 1500 < expected[0][0] < 1600 and 3000 < expected[1][0] < 3100

    kafka = Kafka(stream)
    first, first_alerts = watching(kafka, Recording())
    run(first, kafka, 0, 1700)  # snapshots at 500, 1000, 1500; then it dies, having committed up to 1640
    assert decode_snapshot(kafka.snapshots[-1], SIGNER).examples_offset == 1499
    second, second_alerts = watching(kafka, Recording())
    run(second, kafka, 1640, 2000)
    assert second.caught_up == 140  # 1500..1639 read back, the first change among them
    assert second.error_report()["last_alert"] is None  # that alert is the first learner's, not this one's
    run(second, kafka, 2000, 4000)
    got = [(a.offset, a.position, a.model_version, a.mean_before, a.mean_after)
           for a in first_alerts.sent + second_alerts.sent]
    assert got == expected


def test_a_snapshot_without_a_window_restores_a_fresh_one():
    stream = concept_examples(1200)
    kafka = Kafka(stream)
    run(learner(kafka, Recording(), every=500), kafka, 0, 1000)  # no error watch: its snapshots hold none
    assert decode_snapshot(kafka.snapshots[-1], SIGNER).errors == b""
    second, _ = watching(kafka, Recording())
    run(second, kafka, 1000, 1200)
    assert second.error_report()["values"] == 200


def test_an_error_watch_needs_a_sender():
    kafka = Kafka([])
    with pytest.raises(ValueError, match="send_alerts"):
        CentralLearner(Recording, LearnerBook, model_factory(kind="lr"), signer=SIGNER,
                       last_snapshots=kafka.last_snapshots, read_back=None, publish=kafka.publish,
                       error_watch=lambda: LearnerErrorWatch(error_monitor))
