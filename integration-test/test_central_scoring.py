"""Central learning, the scorer's side, against a real worker (``LEARNING_MODE=central``): scores carry
the version of the snapshot the replica holds, with probabilities corrected for its sample rate;
each labelled transaction (label in the event, parked, or late) becomes one example on the examples
topic, sent in source order, and only a restart sends some again, with the same source position; with
one worker the learner learns as the plain loop, and two workers share the scoring and feed one learner."""
from __future__ import annotations

import asyncio
import collections
import functools
import math
import re
import time

import httpx
import pytest

import settings
from app import configured
from app.data.synthetic import generate
from app.learning import OnlineLearner, build_model
from app.learning.examples import decode
from app.learning.pipeline import model_factory
from app.learning.snapshots import Snapshot, encode
from app.learning.snapshots import decode as decode_snapshot
from app.records import Label, Score, Transaction
from app.records.transaction import model_features
from app.replay import to_transaction
from app.serialization import ConfluentAvroCodec, make_registry_client
from app.state.signing import Signer
from app.testing.kafka import produce_raw, read
from app.testing.stack import REGISTRY
from app.testing.worker import wait_for

KEY = "a test key of more than sixteen bytes"
BASE = 1.7e9


def central_env(names) -> dict[str, str]:
    """A central-mode scorer on this test's topics; the learner (if this build runs one) writes no
    snapshot of its own during the test (K and T out of reach), so the test's snapshot is the only one,
    and no staleness bound holds the scoring for the snapshots that do not come."""
    return {"FRAUD_AGENTS": "scoring", "FRAUD_LEARNING_MODE": "central", "FRAUD_MODEL_KIND": "lr",
            "FRAUD_STATE_KEY": KEY, "FRAUD_EXAMPLES_TOPIC": f"{names.prefix}.examples",
            "FRAUD_SNAPSHOTS_TOPIC": f"{names.prefix}.snapshots", "FRAUD_SNAPSHOT_EVERY": "1000000",
            "FRAUD_SNAPSHOT_EVERY_S": "3600", "FRAUD_STALENESS_MAX_EXAMPLES": "0",
            "FRAUD_LEARN_SAMPLE_RATE": "1.0"}


class Stream:
    """The test's producers: transactions (label in the event or not) and late labels."""

    def __init__(self, names, rows) -> None:
        client = make_registry_client(REGISTRY)
        self.names, self.rows = names, rows
        self.tx_codec = ConfluentAvroCodec(client, names.transactions, Transaction.avro_schema_to_python())
        self.label_codec = ConfluentAvroCodec(client, names.labels, Label.avro_schema_to_python())

    def value(self, i: int, labelled: bool) -> dict:
        return to_transaction(self.rows[i], f"tx-{i}", BASE + i, with_label=labelled)

    def transactions(self, indices, labelled=lambda i: False) -> None:
        produce_raw(self.names.transactions, [(f"tx-{i}".encode(), self.tx_codec.dumps(self.value(i, labelled(i))))
                                              for i in indices])

    def labels(self, indices) -> None:
        produce_raw(self.names.labels, [
            (f"tx-{i}".encode(), self.label_codec.dumps({
                "transaction_id": f"tx-{i}", "label": int(self.rows[i]["Class"]),
                "event_time": self.value(i, False)["event_time"]}))
            for i in indices])


def scores_by_id(names, expect: int, timeout_s: float = 120) -> dict[str, dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        by_id = {value["transaction_id"]: value for _, value, _, _ in read(names.scores, Score, timeout_s=30, idle_s=2)}
        if len(by_id) >= expect or time.monotonic() > deadline:
            return by_id


def examples(names, expect: int, timeout_s: float = 60) -> list:
    """The examples topic in its order, decoded (with their Kafka keys checked)."""
    records = read(f"{names.prefix}.examples", expect=expect, timeout_s=timeout_s, idle_s=3)
    out = []
    for key, value, _, _ in records:
        example = decode(value)
        assert key == example.key
        out.append(example)
    return out


def in_source_order(found) -> int:
    """How many times an example's source offset did not follow the one before it in its source
    partition (0: every source partition's examples came in offset order; a worker that resumes
    from its committed offset and sends some examples again makes one step back, however many it
    sends again)."""
    last, back = {}, 0
    for example in found:
        where = example.source[:2]
        if example.source[2] <= last.get(where, -1):
            back += 1
        last[where] = example.source[2]
    return back


def test_replica_versions_corrected_probabilities_and_one_example_per_labelled_transaction(make_worker, names):
    worker = make_worker(central_env(names))
    rows = generate(800, seed=5)
    stream = Stream(names, rows)

    stream.labels(range(600, 620))  # before their transactions: parked
    stream.transactions(range(600), labelled=lambda i: i % 3 == 0)
    first = scores_by_id(names, 600)
    assert len(first) == 600, worker.log_tail()
    assert all(re.fullmatch(r"lr-g\d+@\d+", s["model_version"]) for s in first.values())

    # a snapshot of an untrained model (0.5 for any input) that learned a half of the genuine examples
    untrained = OnlineLearner(model_factory(kind="lr"), generation=7)
    snapshot = Snapshot("lr", "lr-g7@123456", examples_offset=99, positions={}, received=123456, sample_rate=0.5,
                        model=untrained.to_checkpoint(), learned=5)
    produce_raw(f"{names.prefix}.snapshots", [(b"lr", encode(snapshot, Signer(KEY)))])
    deadline, probe = time.monotonic() + 60, 0
    while True:  # unlabelled probes until the replica has swapped (it does so between two batches)
        produce_raw(names.transactions, [(f"probe-{probe}".encode(), stream.tx_codec.dumps(
            {**stream.value(0, False), "transaction_id": f"probe-{probe}"}))])
        scored = scores_by_id(names, 600 + probe + 1, timeout_s=20)
        if scored.get(f"probe-{probe}", {}).get("model_version") == "lr-g7@123456":
            break
        assert time.monotonic() < deadline, worker.log_tail()
        probe += 1

    stream.transactions(range(600, 800))
    late = [i for i in range(1, 300) if i % 3 != 0][:100] + list(range(700, 750))
    stream.labels(late)
    by_id = scores_by_id(names, 800 + probe + 1)
    second = [by_id[f"tx-{i}"] for i in range(600, 800)]
    assert {s["model_version"] for s in second} == {"lr-g7@123456"}, worker.log_tail()
    assert all(abs(s["fraud_probability"] - 1 / 3) < 1e-12 for s in second)  # 0.5 corrected for r = 0.5
    assert {s["events_learned"] for s in second} == {5} and not any(s["decision"] for s in second)

    in_event = [i for i in range(600) if i % 3 == 0]
    found = examples(names, len(in_event) + 20 + len(late))
    counts = collections.Counter(example.transaction_id for example in found)
    assert set(counts) == {f"tx-{i}" for i in in_event + list(range(600, 620)) + late}, worker.log_tail()
    assert set(counts.values()) == {1}  # no restart: each exactly once
    by_example = {example.transaction_id: example for example in found}
    for i in in_event + list(range(600, 620)):  # in the event, or parked and met by its transaction
        example, score = by_example[f"tx-{i}"], by_id[f"tx-{i}"]
        assert example.source == (names.transactions, score["partition"], score["offset"])
        assert example.label == int(rows[i]["Class"]) and example.features["Amount"] == float(rows[i]["Amount"])
    for i in late:
        example = by_example[f"tx-{i}"]
        assert example.source[:2] == (names.labels, 0) and example.label == int(rows[i]["Class"])
        assert example.features["Amount"] == float(rows[i]["Amount"])
        assert example.event_time == stream.value(i, False)["event_time"]  # its transaction's
    assert in_source_order(found) == 0
    assert worker.metric("fraud_labels_total", outcome="learned") == len(late)
    assert worker.metric("fraud_parked_labels_total", event="learned") == 20
    unlabelled = 800 - len(in_event) - 20 - len(late) + probe + 1  # the probes too
    assert worker.metric("fraud_labels_parked") == 0 and worker.metric("fraud_labels_pending") == unlabelled


def test_a_killed_scorer_sends_examples_again_only_for_what_it_had_not_committed(make_worker, names):
    env = {**central_env(names), "FRAUD_BATCH_SIZE": "50"}
    first = make_worker(env, name="first")
    rows = generate(1500, seed=6)
    stream = Stream(names, rows)
    stream.transactions(range(1000), labelled=lambda i: True)
    deadline = time.monotonic() + 120
    while len(read(names.scores, timeout_s=5, idle_s=1)) < 400:
        assert time.monotonic() < deadline, first.log_tail()
    first.kill()
    before = len(read(f"{names.prefix}.examples", timeout_s=5, idle_s=1))

    stream.transactions(range(1000, 1500), labelled=lambda i: True)  # work that only the second can do
    second = make_worker(env, name="second", start=False).start(timeout_s=150)
    assert len(scores_by_id(names, 1500, timeout_s=180)) == 1500, second.log_tail()
    found = examples(names, 1500, timeout_s=60)
    copies = collections.defaultdict(set)
    for example in found:
        copies[example.transaction_id].add((example.source, example.label))
    assert set(copies) == {f"tx-{i}" for i in range(1500)}  # none lost
    assert all(len(versions) == 1 for versions in copies.values())  # a copy has its original's position
    duplicates = len(found) - 1500
    assert 0 <= duplicates <= before  # only examples sent before the kill come again
    assert in_source_order(found) <= 1  # in order, but for the one step back where the second worker resumed


def test_one_worker_one_partition_the_learner_learns_as_the_plain_loop(make_worker, names):
    """End to end through the scorer, the examples topic and the learner: the learner's prequential
    record is the plain loop's, and its last snapshot predicts as the loop's model does; the scores
    carry the versions of the snapshots the replica held, never ahead of the stream, and, with a
    staleness bound, never more than the bound plus the batches in flight behind it."""
    rows_n = 3000
    bound = 100
    batches = (1 + settings.SCORING_BATCHES_IN_FLIGHT) * 50  # the batch being planned, those in flight (of 50)
    env = {**central_env(names), "FRAUD_MODEL_KIND": "arf+lr", "FRAUD_ARF_TREES": "3", "FRAUD_BATCH_SIZE": "50",
           "FRAUD_WINDOW_FEATURES": "false", "FRAUD_SNAPSHOT_EVERY": "50", "FRAUD_SNAPSHOT_EVERY_S": "1",
           "FRAUD_STALENESS_MAX_EXAMPLES": str(bound), "FRAUD_STALENESS_MAX_WAIT_S": "30",
           "FRAUD_PREQUENTIAL_REPORT_INTERVAL_S": "1"}
    worker = make_worker(env)
    rows = generate(rows_n, seed=7, fraud_rate=0.02)
    stream = Stream(names, rows)
    half = rows_n // 2
    stream.transactions(range(half), labelled=lambda i: True)
    snapshots_topic = f"{names.prefix}.snapshots"
    wait_for(worker, lambda: read(snapshots_topic, timeout_s=2, idle_s=1), 180, "a first snapshot")
    stream.transactions(range(half, rows_n), labelled=lambda i: True)  # scored by a replica of a snapshot

    learner = OnlineLearner(functools.partial(build_model, **{**configured.model_params(settings), "kind": "arf+lr",
                                                               "trees": 3}))
    evaluator = configured.prequential_evaluator(settings)
    for i in range(rows_n):
        x = model_features(stream.value(i, True), settings.MODEL_FEATURES)
        evaluator.update(int(rows[i]["Class"]), learner.predict_proba(x))
        learner.learn(x, int(rows[i]["Class"]))
    expected = evaluator.report()["window"]
    assert expected["positives"] > 20 and not math.isnan(expected["pr_auc"])

    by_id = scores_by_id(names, rows_n, timeout_s=240)
    assert len(by_id) == rows_n, worker.log_tail()

    def learner_metric(metric: str) -> float:
        return worker.metric("fraud_prequential_metric", partition="central", metric=metric, window="window")

    wait_for(worker, lambda: learner_metric("count") == rows_n, 180, "the learner's record of every example")
    for metric in ("roc_auc", "pr_auc", "precision", "recall", "positives"):
        assert learner_metric(metric) == expected[metric], metric
    learner_page = httpx.get(worker.url + "/model", timeout=10.0).json()["learner"]  # it runs on this worker
    assert (learner_page["examples_received"], learner_page["prequential"]["window"]["pr_auc"]) == (
        rows_n, expected["pr_auc"]), learner_page

    deadline = time.monotonic() + 60
    while True:  # the last snapshot (T = 1 s after the last example) has taken in every example
        records = read(snapshots_topic, timeout_s=10, idle_s=2)
        last = decode_snapshot(records[-1][1], Signer(KEY)) if records else None
        if last is not None and last.received == rows_n:
            break
        assert time.monotonic() < deadline, worker.log_tail()
    model = OnlineLearner.from_checkpoint(last.model)
    for i in range(0, rows_n, 60):
        x = model_features(stream.value(i, True), settings.MODEL_FEATURES)
        assert model.predict_proba(x) == learner.predict_proba(x)

    learned_at = [int(by_id[f"tx-{i}"]["model_version"].rsplit("@", 1)[1]) for i in range(rows_n)]
    assert all(n <= i for i, n in enumerate(learned_at))  # a replica never has learned a row not yet scored
    assert all(n > 0 for n in learned_at[half:])  # the second half: by the replica of a snapshot
    # every row is labelled and its example is the i-th of the topic: a score of row i is i - n stale
    assert max(i - n for i, n in enumerate(learned_at) if i >= half) <= bound + batches
    assert worker.metric("fraud_staleness_timeouts_total") == 0


def test_two_workers_share_the_scoring_and_feed_one_learner(make_worker, names):
    """Four partitions on two workers: both score (each with its replica, swapped to the learner's
    snapshots), every labelled transaction reaches the one learner, which takes each in once."""
    rows_n = 2000
    env = {**central_env(names), "FRAUD_TOPIC_PARTITIONS": "4", "FRAUD_SNAPSHOT_EVERY": "200",
           "FRAUD_SNAPSHOT_EVERY_S": "1", "FRAUD_PREQUENTIAL_REPORT_INTERVAL_S": "1"}
    first = make_worker(env, name="first")
    second = make_worker(env, name="second")
    rows = generate(rows_n, seed=8, fraud_rate=0.02)
    stream = Stream(names, rows)
    half = rows_n // 2
    stream.transactions(range(half), labelled=lambda i: True)
    wait_for(first, lambda: read(f"{names.prefix}.snapshots", timeout_s=2, idle_s=1), 180, "a first snapshot")
    stream.transactions(range(half, rows_n), labelled=lambda i: True)

    by_id = scores_by_id(names, rows_n, timeout_s=240)
    assert len(by_id) == rows_n, first.log_tail() + second.log_tail()
    for worker in (first, second):  # both scored
        assert worker.metric("fraud_events_in_total", topic=names.transactions) > 0, worker.log_tail()
    assert {s["partition"] for s in by_id.values()} == {0, 1, 2, 3}
    learned_at = [int(by_id[f"tx-{i}"]["model_version"].rsplit("@", 1)[1]) for i in range(half, rows_n)]
    assert sum(n > 0 for n in learned_at) > half // 2  # mostly by replicas of the learner's snapshots

    found = examples(names, rows_n, timeout_s=60)
    copies = collections.defaultdict(set)
    for example in found:
        copies[example.transaction_id].add(example.source)
    assert set(copies) == {f"tx-{i}" for i in range(rows_n)}
    assert all(len(sources) == 1 for sources in copies.values())  # a copy (a rebalance's) has its position

    def last_snapshot():
        records = read(f"{names.prefix}.snapshots", timeout_s=5, idle_s=1)
        return decode_snapshot(records[-1][1], Signer(KEY)) if records else None

    # the learner (on whichever worker owns the examples) took every transaction in once: its count
    # leaves duplicates out, and a snapshot carries it over if the learner moved with the rebalance
    wait_for(first, lambda: last_snapshot().received == rows_n, 120, "a snapshot of every transaction, once")


def test_a_scorer_holding_for_the_snapshot_never_stops_its_own_workers_learner(make_worker, names):
    """One worker, four partitions, a backlog larger than the stream's buffer, a tight staleness
    bound: the scorer holds its batches while the learner, on the same worker, catches up, so the
    learner's examples must keep coming while the transactions wait. Every score is then within the
    bound (plus the batches in flight) and no hold runs out of time."""
    rows_n, bound, batches = 8000, 100, (1 + settings.SCORING_BATCHES_IN_FLIGHT) * settings.BATCH_SIZE
    env = {**central_env(names), "FRAUD_TOPIC_PARTITIONS": "4", "FRAUD_SNAPSHOT_EVERY": "50",
           "FRAUD_SNAPSHOT_EVERY_S": "1", "FRAUD_STALENESS_MAX_EXAMPLES": str(bound),
           "FRAUD_STALENESS_MAX_WAIT_S": "30"}
    worker = make_worker(env)
    rows = generate(rows_n, seed=9, fraud_rate=0.02)
    Stream(names, rows).transactions(range(rows_n), labelled=lambda i: True)

    by_id = scores_by_id(names, rows_n, timeout_s=300)
    assert len(by_id) == rows_n, worker.log_tail()
    assert {s["partition"] for s in by_id.values()} == {0, 1, 2, 3}
    assert worker.metric("fraud_staleness_timeouts_total") == 0, worker.log_tail()
    assert worker.metric("fraud_staleness_held_seconds_total") > 0  # it did hold for the learner
    offset_of = {}
    for offset, example in enumerate(examples(names, rows_n, timeout_s=60)):
        offset_of.setdefault(example.transaction_id, offset)
    stale = [offset_of[key] - int(score["model_version"].rsplit("@", 1)[1]) for key, score in by_id.items()]
    assert max(stale) <= bound + batches, max(stale)


def uneven_backlog(names, seed: int, span: float = 2000.0):
    """Transactions on four partitions over the same ``span`` seconds of event time, partition 0 ten
    times as dense as the others, written in event-time order before any worker reads them: a
    consumer reads the partitions at about the same number of records each, so the sparse ones run
    through their whole span while the dense one is at its first tenth. The ids, in event-time order."""
    from aiokafka.partitioner import DefaultPartitioner

    from app.admin import ensure_topics
    from app.testing.stack import BROKER

    partition_of = DefaultPartitioner()
    rows = generate(8000, seed=seed)
    by_partition = collections.defaultdict(list)
    for i in range(len(rows)):
        by_partition[partition_of(f"tx-{i}".encode(), [0, 1, 2, 3], [0, 1, 2, 3])].append(i)
    chosen = {p: ids[:1200] if p == 0 else ids[:120] for p, ids in by_partition.items()}
    event_time = {i: BASE + span * rank / len(ids) for ids in chosen.values() for rank, i in enumerate(ids)}
    in_order = sorted(event_time, key=event_time.get)
    asyncio.run(ensure_topics(BROKER, [names.transactions, names.labels], partitions=4))
    stream = Stream(names, rows)
    stream.value = lambda i, labelled: to_transaction(rows[i], f"tx-{i}", event_time[i], with_label=labelled)
    stream.transactions(in_order, labelled=lambda i: True)
    return in_order


def behind_newest(found) -> list[float]:
    """Per example, in the topic's order, how far its event time is behind the newest before it (an
    example sent again after a rebalance, which the learner skips, is left out)."""
    newest, behind, seen = float("-inf"), [], set()
    for example in found:
        if example.transaction_id in seen:
            continue
        seen.add(example.transaction_id)
        newest = max(newest, example.event_time)
        behind.append(newest - example.event_time)
    return behind


def test_a_worker_scores_its_partitions_in_step_in_event_time(make_worker, names):
    """Four partitions over the same 2,000 s of event time, one of them ten times as dense as the
    others, all in Kafka before the worker starts: its consumer reads the partitions at about the
    same number of records each, so the sparse ones run through their 2,000 s while the dense one is
    still at its first 200. With ALIGN_MAX_SKEW_S the worker holds what runs ahead, and the examples
    (one per transaction, sent as each is scored) come in event-time order to within the skew."""
    skew = 50.0
    in_order = uneven_backlog(names, seed=10)

    env = {**central_env(names), "FRAUD_TOPIC_PARTITIONS": "4", "FRAUD_ALIGN_MAX_SKEW_S": str(skew),
           "FRAUD_BROKER_MAX_POLL_RECORDS": "50", "FRAUD_CONSUMER_MAX_FETCH_BYTES": "8192"}
    worker = make_worker(env)
    assert len(scores_by_id(names, len(in_order), timeout_s=180)) == len(in_order), worker.log_tail()
    found = examples(names, len(in_order), timeout_s=60)
    assert sorted(example.transaction_id for example in found) == sorted(f"tx-{i}" for i in in_order)
    behind = behind_newest(found)
    assert max(behind) <= skew, (max(behind), worker.log_tail())
    assert in_source_order(found) == 0  # each partition's in its own order
    assert worker.metric("fraud_events_held") == 0


@pytest.mark.skip(reason="not reliable yet: when one worker starts more than ALIGN_IDLE_S after the other, the "
                         "other runs through its partitions before the learner has any of the late one's "
                         "(1,730 s behind in a fresh-clone CI run; 200-320 s in five local runs)")
def test_two_workers_score_their_partitions_in_step_through_the_learners_snapshots(make_worker, names):
    """The same backlog on two workers: each holds its own partitions in step, and the learner's
    snapshots (each partition's newest event time learned) hold a worker whose partitions run ahead
    of the other's. Without the snapshots' event times a worker with only sparse partitions would
    score their whole 2,000 s first (about 1,800 s behind); with them the examples stay in event-time
    order to within a few times the skew: the other worker's position is estimated from what the
    learner has of it (measured while writing the test, under load: at most 200-320 s behind)."""
    skew = 50.0
    in_order = uneven_backlog(names, seed=11)
    env = {**central_env(names), "FRAUD_TOPIC_PARTITIONS": "4", "FRAUD_ALIGN_MAX_SKEW_S": str(skew),
           "FRAUD_ALIGN_IDLE_S": "30", "FRAUD_SNAPSHOT_EVERY": "20", "FRAUD_SNAPSHOT_EVERY_S": "0.2",
           "FRAUD_STALENESS_MAX_EXAMPLES": "100",
           "FRAUD_STALENESS_MAX_WAIT_S": "10", "FRAUD_BROKER_MAX_POLL_RECORDS": "50",
           "FRAUD_CONSUMER_MAX_FETCH_BYTES": "8192"}
    workers = [make_worker(env, name=name, start=False) for name in ("first", "second")]
    for worker in workers:
        worker.launch()
    for worker in workers:
        worker.wait_ready(timeout_s=120)
    assert len(scores_by_id(names, len(in_order), timeout_s=240)) == len(in_order), \
        "\n".join(w.log_tail() for w in workers)
    for worker in workers:
        assert worker.metric("fraud_events_in_total", topic=names.transactions) > 0, worker.log_tail()
    found = examples(names, len(in_order), timeout_s=60)
    assert {example.transaction_id for example in found} == {f"tx-{i}" for i in in_order}
    behind = behind_newest(found)
    assert max(behind) <= 8 * skew, (max(behind), sorted(behind)[-20:])
