"""The central learner on the real broker (``LEARNING_MODE=central``): examples written to the
examples topic by the test itself are learned exactly as a plain loop learns them, snapshots appear
on the snapshots topic, and a worker that restarts (cleanly, or killed) resumes from the last
snapshot without learning any example twice or losing one.

The workers run the learner alone (``FRAUD_AGENTS`` empty): what scorers write is the scorer's
tests' business; here the examples are the test's."""
from __future__ import annotations

import asyncio
import functools

import numpy as np

import settings
from app import configured
from app.data import ensure_creditcard_csv, iter_rows
from app.learning import OnlineLearner, build_model
from app.learning.evaluation import exact_metrics
from app.learning.examples import Example, encode
from app.learning.snapshots import decode as decode_snapshot
from app.records import FEATURE_NAMES
from app.state.last_records import last_records
from app.state.signing import Signer
from app.testing.kafka import committed_and_end, produce_raw
from app.testing.stack import BROKER
from app.testing.worker import assert_healthy, wait_for

KEY = "central-learner-integration-test-key"
TREES = 3


def learner_env(names) -> dict[str, str]:
    return {"FRAUD_LEARNING_MODE": "central", "FRAUD_AGENTS": "", "FRAUD_ARF_TREES": str(TREES),
            "FRAUD_EXAMPLES_TOPIC": f"{names.prefix}.examples", "FRAUD_SNAPSHOTS_TOPIC": f"{names.prefix}.snapshots",
            "FRAUD_SNAPSHOT_EVERY": "250", "FRAUD_SNAPSHOT_EVERY_S": "1.0", "FRAUD_STATE_KEY": KEY,
            "FRAUD_PREQUENTIAL_REPORT_INTERVAL_S": "1", "FRAUD_PREQUENTIAL_WINDOW": "10000",
            "FRAUD_LEARN_SAMPLE_RATE": "1.0"}


def ulb_examples(n: int) -> list[Example]:
    """The first ``n`` ULB rows as examples, their sources spread over two transaction partitions
    (each partition's offsets in order, as a scorer writes them)."""
    out, next_offset = [], [0, 0]
    for i, row in enumerate(iter_rows(ensure_creditcard_csv(), limit=n)):
        partition = i % 2 if i % 7 else 1 - i % 2
        out.append(Example(f"tx-{i:09d}", float(row["Time"]), {name: float(row[name]) for name in FEATURE_NAMES},
                           int(row["Class"]), ("transactions", partition, next_offset[partition])))
        next_offset[partition] += 1
    return out


def plain_loop(examples: list[Example]) -> tuple[OnlineLearner, np.ndarray]:
    learner = OnlineLearner(functools.partial(build_model, **{**configured.model_params(settings), "trees": TREES}))
    p = np.empty(len(examples))
    for i, example in enumerate(examples):
        p[i] = learner.predict_proba(example.features)
        learner.learn(example.features, example.label)
    return learner, p


def newest_snapshot(topic: str):
    records = asyncio.run(last_records(topic, 0, count=1, broker=BROKER))
    return decode_snapshot(records[0][1], Signer(KEY)) if records else None


def wait_snapshot(worker, topic: str, received: int, timeout_s: float = 180.0):
    found = []

    def reached() -> bool:
        snapshot = newest_snapshot(topic)
        found[:] = [snapshot]
        return snapshot is not None and snapshot.received >= received

    wait_for(worker, reached, timeout_s, f"a snapshot of {received} examples on {topic}", interval_s=1.0)
    return found[0]


def same_model(snapshot, loop: OnlineLearner, probes: list[Example]) -> bool:
    model = OnlineLearner.from_checkpoint(snapshot.model)
    return all(model.predict_proba(e.features) == loop.predict_proba(e.features) for e in probes)


def produce(topic: str, examples: list[Example]) -> None:
    produce_raw(topic, [(e.key, encode(e)) for e in examples])


def test_the_learner_is_the_plain_loop_and_resumes_from_its_snapshot(make_worker, names):
    env = learner_env(names)
    examples_topic, snapshots_topic = env["FRAUD_EXAMPLES_TOPIC"], env["FRAUD_SNAPSHOTS_TOPIC"]
    stream = ulb_examples(3000)
    first, second, third = stream[:1200], stream[1200:2200], stream[2200:]

    # one worker learns the first 1,200 examples: the plain loop's probabilities, snapshots every 250
    worker = make_worker(env, name="a")
    produce(examples_topic, first)
    snapshot = wait_snapshot(worker, snapshots_topic, 1200)
    loop, p = plain_loop(first)
    assert snapshot.received == snapshot.learned == 1200 and snapshot.examples_offset == 1199
    assert snapshot.version == f"arf{TREES}+lr-g0@1200" and snapshot.sample_rate == 1.0
    assert snapshot.positions == {"transactions:0": max(e.source[2] for e in first if e.source[1] == 0),
                                  "transactions:1": max(e.source[2] for e in first if e.source[1] == 1)}
    assert same_model(snapshot, loop, stream[:300])
    # its prequential record is the loop's (exact metrics over the window, which holds every example)
    expected = exact_metrics(np.array([e.label for e in first]), p, settings.DECISION_THRESHOLD)
    wait_for(worker, lambda: worker.metric("fraud_prequential_metric", partition="central", metric="count",
                                           window="window") == 1200, 30, "the learner's record")
    assert abs(worker.metric("fraud_prequential_metric", partition="central", metric="pr_auc", window="window")
               - expected["pr_auc"]) < 1e-12
    # one at the end of the first batch to reach 250 more examples (batches of up to BATCH_SIZE), the
    # rest by time: at least 1,200 / (250 + 200) of them
    assert worker.metric("fraud_snapshots_total") >= 2
    assert worker.metric("fraud_learner_examples_total", decision="learn") == 1200
    assert_healthy(worker)

    # a clean stop writes nothing new (all was in the last snapshot); a scorer that restarted writes
    # 100 examples again, then the next 1,000; a new worker resumes from the snapshot. This one writes
    # no snapshot unless it stops cleanly, so that its successor has to read back what it committed
    assert worker.stop() == 0
    produce(examples_topic, first[-100:] + second)
    worker = make_worker({**env, "FRAUD_SNAPSHOT_EVERY": "1000000", "FRAUD_SNAPSHOT_EVERY_S": "3600"}, name="b")
    wait_for(worker, lambda: worker.metric("fraud_learner_examples_total", decision="learn") == 1000, 120,
             "the second part learned")
    assert worker.metric("fraud_learner_examples_total", decision="duplicate") == 100
    assert f"starts from the snapshot arf{TREES}+lr-g0@1200" in worker.run_log_text()

    # killed while learning, its last commit past the last snapshot: the next worker restores that
    # snapshot, reads back the examples committed after it (the 100 written twice among them, skipped),
    # and learns every example once
    produce(examples_topic, third[:400])
    wait_for(worker, lambda: worker.metric("fraud_learner_examples_total", decision="learn") >= 1100, 120,
             "some of the third part learned")
    wait_for(worker, lambda: committed_and_end(names.app_id, examples_topic)[0].get(0, 0) >= 2300, 60,
             "a commit past the snapshot")
    worker.kill()
    assert newest_snapshot(snapshots_topic).received == 1200
    produce(examples_topic, third[400:])
    worker = make_worker(env, name="c")
    snapshot = wait_snapshot(worker, snapshots_topic, 3000)
    loop, _ = plain_loop(stream)
    assert snapshot.received == 3000 and snapshot.examples_offset == 3000 + 100 - 1
    assert same_model(snapshot, loop, stream[:300])
    caught_up = worker.metric("fraud_caught_up_events_total", state="central learner")
    assert caught_up >= 2300 - 1200, worker.log_tail()
    assert worker.metric("fraud_learner_examples_total", decision="duplicate") == 100
    assert worker.metric("fraud_learner_examples_total", decision="learn") == 3000 - 1200
    assert_healthy(worker)


def flipping_examples(n: int, flip: int, seed: int = 3) -> list[Example]:
    """``n`` examples whose label is ``V1 > 0.5`` until ``flip``, its opposite from there (2% of
    them the other label): the learner's error rate jumps at ``flip``, from the noise to most examples."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        v1 = float(rng.normal())
        label = int(v1 > 0.5) ^ int(i >= flip) ^ int(rng.random() < 0.02)
        out.append(Example(f"tx-{i:09d}", float(i), {"V1": v1, "V2": float(rng.random())}, label,
                           ("transactions", 0, i)))
    return out


def test_the_learner_alerts_on_a_jump_of_its_own_error_rate(make_worker, names):
    """The drift alerts of the learner's own predictions (its prequential errors) reach drift-alerts
    where the same ADWIN over a plain loop's errors finds the change, marked as the central learner's."""
    from app.drift.detectors import error_monitor
    from app.drift.learner_errors import CENTRAL, LearnerErrorWatch
    from app.records import DriftAlert
    from app.testing.kafka import read

    settle, stream = 200, flipping_examples(3000, flip=2000)
    env = {**learner_env(names), "FRAUD_MODEL_KIND": "lr", "FRAUD_DRIFT_SETTLE_EVENTS": str(settle)}
    # offline: the plain loop's predictions, their errors at the threshold through the same monitor
    loop = OnlineLearner(functools.partial(build_model, **{**configured.model_params(settings), "kind": "lr"}))
    watch, expected = LearnerErrorWatch(lambda: error_monitor(**configured.adwin_params(settings), settle=settle)), []
    for i, example in enumerate(stream):
        wrong = (loop.predict_proba(example.features) >= settings.DECISION_THRESHOLD) != bool(example.label)
        loop.learn(example.features, example.label)
        found = watch.observe(wrong, i, event_time=example.event_time, transaction_id=example.transaction_id,
                              offset=i, model_version="")
        if found is not None:
            expected.append(found.offset)
    assert len(expected) == 1 and 2000 < expected[0] < 2100, expected  # the loop sees the jump, and only it

    worker = make_worker(env)
    produce(env["FRAUD_EXAMPLES_TOPIC"], stream)
    wait_for(worker, lambda: worker.metric("fraud_learner_examples_total", decision="learn") == len(stream), 60,
             "every example learned")
    got = [value for _, value, _, _ in read(names.drift_alerts, DriftAlert, expect=len(expected) + 1, timeout_s=20,
                                            idle_s=3)]
    assert [a["offset"] for a in got] == expected, worker.log_tail()
    alert = got[0]
    assert (alert["stream"], alert["partition"], alert["mitigation"]) == ("error", CENTRAL, "none")
    assert alert["transaction_id"] == stream[alert["offset"]].transaction_id
    assert alert["model_version"] == f"lr-g0@{alert['offset']}"
    assert alert["description"].endswith("examples of the central learner")
    assert worker.metric("fraud_drift_alerts_total", stream="error") == 1
    assert_healthy(worker)
