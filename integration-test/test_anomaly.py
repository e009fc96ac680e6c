"""The anomaly agent on the real broker: anomalies reach ``anomalies``; its card windows and the
detector survive restarts."""
from __future__ import annotations

import re
import time

import pytest

from app.anomaly import AnomalyDetector, RollingQuantileThreshold
from app.data.synthetic import generate
from app.records import Anomaly, Score, Transaction
from app.replay import to_transaction
from app.state.checkpointed import open_envelope
from app.testing.kafka import read
from app.testing.replay import replay
from app.testing.worker import wait_committed

TIME_BASE = 1_750_000_000.0


def wait_events_in(worker, topic: str, n: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while worker.metric("fraud_events_in_total", topic=topic) < n:
        assert time.monotonic() < deadline, worker.log_tail()
        time.sleep(0.5)


def wait_agent_events(worker, agent: str, n: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while worker.metric("fraud_agent_events_total", agent=agent) < n:
        assert time.monotonic() < deadline, worker.log_tail()
        time.sleep(0.5)


@pytest.mark.parametrize("agents", ["anomaly", "scoring,anomaly,drift"])
def test_anomalies_reach_the_topic_as_the_pure_detector_flags_them(make_worker, names, agents):
    """Alone, and in the product's worker, where the scoring agent does the detection on each batch
    it takes (one pass over the transactions for the three agents): the same anomalies."""
    worker = make_worker({"FRAUD_AGENTS": agents, "FRAUD_ANOMALY_THRESHOLD_KIND": "quantile",
                          "FRAUD_ANOMALY_QUANTILE": "0.98", "FRAUD_ANOMALY_QUANTILE_WINDOW": "500",
                          "FRAUD_ANOMALY_WARMUP": "300", "FRAUD_MODEL_KIND": "lr"})
    rows = generate(3000, seed=7, fraud_rate=0.01)
    sent = replay(names, rows, keep_ids=True, time_base=TIME_BASE)
    wait_agent_events(worker, "anomaly", 3000)
    if agents == "anomaly":
        assert worker.metric("fraud_events_in_total", topic=names.transactions) == 3000
    else:  # every transaction scored, its features watched for drift, and each agent done with it once
        wait_agent_events(worker, "scoring", 3000)
        wait_agent_events(worker, "drift-transactions", 3000)
        assert len(read(names.scores, Score, expect=3000, timeout_s=60)) == 3000
        for agent in ("scoring", "anomaly", "drift-transactions"):
            assert worker.metric("fraud_agent_events_total", agent=agent) == 3000

    detector = AnomalyDetector(warmup=300, threshold=RollingQuantileThreshold(0.98, 500))
    expected = []
    for tid, row in zip(sent.ids, rows):
        tx = Transaction(**to_transaction(row, tid, TIME_BASE, True))
        verdict = detector.process(tx.features())
        if verdict.flagged:
            expected.append((tid, verdict))
    assert 10 < len(expected) < 150

    got = read(names.anomalies, Anomaly, expect=len(expected), timeout_s=60)
    assert [v["transaction_id"] for _, v, _, _ in got] == [tid for tid, _ in expected], worker.log_tail()
    for (key, value, _, _), (tid, verdict) in zip(got, expected):
        assert key == tid.encode()
        assert abs(value["score"] - verdict.score) < 1e-12 and abs(value["threshold"] - verdict.threshold) < 1e-12
        assert value["threshold_kind"] == "quantile" and value["model_version"].startswith("MinMaxScaler|HST")
    assert worker.metric("fraud_anomalies_total") == len(expected)
    assert worker.metric("fraud_events_out_total", topic=names.anomalies) == len(expected)


def test_card_windows_survive_a_restart(make_worker, names):
    """With ANOMALY_WINDOW_FEATURES the detector's card windows are kept in its own table: after a
    graceful stop and a restart (the second half sent while the worker recovers), every card's state
    in the table's changelog is the pure driver's over all the rows, each transaction counted once."""
    import settings
    from app import configured
    from app.data.simulator import CONFIGS, load
    from app.features.stream import StreamFeatures
    from app.scoring.windows import decode_card

    env = {"FRAUD_AGENTS": "anomaly", "FRAUD_ANOMALY_WINDOW_FEATURES": "true"}
    sim = load(CONFIGS["small"], 0)
    rows = [row for _, row in zip(range(3000), sim.rows(0, None))]
    first, second = rows[:1500], rows[1500:]

    worker = make_worker(env)
    replay(names, first, keep_ids=True)
    wait_events_in(worker, names.transactions, len(first))
    wait_committed(worker, names.transactions)
    worker.stop()  # graceful: the changelogs are flushed and the offsets committed
    worker.launch()  # same state folder: the table is restored from its changelog
    replay(names, second, keep_ids=True, start_index=len(first))
    worker.wait_ready(120)
    wait_events_in(worker, names.transactions, len(second))
    worker.stop()

    pure = StreamFeatures(configured.transaction_features(settings))
    for offset, row in enumerate(rows):  # one partition: a row's offset is its index
        pure.transaction(row, offset)
    changelog = f"{names.app_id}-{settings.ANOMALY_CARD_WINDOWS_TABLE}-changelog"
    final: dict = {}
    records = 0
    for key, value, _, _ in read(changelog, None, timeout_s=30, idle_s=3):
        records += value is not None
        if value is None:
            final.pop(key.decode(), None)
        else:
            final[key.decode()] = decode_card(value)[1]
    assert final == pure.cards
    assert records == len(rows)  # one record per transaction: none counted twice
    spanning = {row["card_id"] for row in first} & {row["card_id"] for row in second}
    assert len(spanning) >= 100  # most cards' windows were built on before and after the restart


def checkpointed_events(topic: str) -> dict[bytes, int]:
    """The events seen by each partition's last anomaly detector checkpoint in the changelog."""
    last = {key: value for key, value, _, _ in read(topic, None, timeout_s=30, idle_s=3) if value is not None}
    return {key: AnomalyDetector.from_checkpoint(open_envelope(value)[1]).events_seen for key, value in last.items()}


def test_the_detector_resumes_from_its_checkpoint_after_a_kill(make_worker, names):
    """kill -9 after periodic checkpoints and a commit of all that was consumed: the next worker
    restores the detectors, reads back from Kafka the transactions committed after their checkpoints
    and learns them, so that every transaction is learned once; a clean stop checkpoints them."""
    env = {"FRAUD_AGENTS": "anomaly", "FRAUD_ANOMALY_CHECKPOINT_EVERY_EVENTS": "1000"}
    changelog = f"{names.app_id}-anomaly-checkpoints-changelog"
    rows = generate(4000, seed=21)
    # one partition, batches of at most 200 events: checkpoints after 1,000-1,199 and 2,000-2,398
    # events, the next one would need 3,000: some of the first 2,900 are learned after the last one
    before = 2900
    first = make_worker(env, name="first")
    replay(names, rows[:before], time_base=TIME_BASE)
    wait_events_in(first, names.transactions, before)
    wait_committed(first, names.transactions)
    assert first.metric("fraud_anomaly_checkpoints_total") == 2, first.log_tail()
    first.kill()
    at_kill = checkpointed_events(changelog)
    assert 2000 <= sum(at_kill.values()) < before

    second = make_worker(env, name="second", start=False).start(timeout_s=150)  # the dead member's session ends first
    replay(names, rows[before:], time_base=TIME_BASE, start_index=before)
    wait_events_in(second, names.transactions, len(rows) - before)
    wait_committed(second, names.transactions)
    log_text = second.log_text()
    assert "restored AnomalyDetector" in log_text, second.log_tail()
    caught_up = sum(int(n) for n in re.findall(r"the anomaly detector caught up on (\d+) events", log_text))
    assert caught_up == before - sum(at_kill.values()), second.log_tail()
    assert second.metric("fraud_caught_up_events_total", state="anomaly") == caught_up
    assert second.metric("fraud_anomaly_events_seen") == len(rows)  # each once: not from 0, none twice
    second.stop()  # clean: a last checkpoint of each detector
    assert sum(checkpointed_events(changelog).values()) == len(rows)
