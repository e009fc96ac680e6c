"""The anomaly agent in Faust's test context: score then learn, flags reach ``anomalies``, the
detector is checkpointed and restored."""
from __future__ import annotations

from unittest import mock

import pytest

from app.anomaly import AnomalyDetector, FixedThreshold, RollingQuantileThreshold
from app.data.synthetic import generate
from app.records import Transaction
from app.replay import to_transaction
from app.state.checkpointed import open_envelope
from app.windows import WindowFeatures
from tests.fakes import ChangelogTable


def transactions(n: int, seed: int, **kwargs) -> list[Transaction]:
    rows = generate(n, seed=seed, **kwargs)
    return [Transaction(**to_transaction(r, f"tx-{i}", 1_700_000_000.0, True)) for i, r in enumerate(rows)]


@pytest.fixture
def agent_module(monkeypatch):
    import app.agents.anomaly as module

    sent = []

    async def send(key=None, value=None, **kwargs):
        sent.append((key, value))

    monkeypatch.setattr(module, "anomalies", mock.Mock(send=send))
    table = ChangelogTable()
    monkeypatch.setattr(module, "CHECKPOINTS", table)
    monkeypatch.setattr(module, "DETECTORS", module.detector_states(table))
    module.sent, module.written = sent, table.written
    return module


@pytest.mark.asyncio
async def test_flags_above_a_fixed_threshold_with_the_transaction_id(agent_module):
    detector = AnomalyDetector(trees=5, height=6, window=50, warmup=100, threshold=FixedThreshold(0.0), seed=1)
    agent_module.DETECTORS.states[0] = detector
    txs = transactions(150, seed=1)
    async with agent_module.detect_anomalies.test_context() as agent:
        for tx in txs:
            await agent.put(key=tx.transaction_id.encode(), value=tx)
    assert detector.events_seen == 150
    flagged = agent_module.sent
    # HST scores are 0 during its first reference window, so a 0.0 threshold flags scores above 0 only
    assert flagged and all(a.score > 0.0 for _, a in flagged)
    assert {a.transaction_id for _, a in flagged} <= {tx.transaction_id for tx in txs[100:]}
    key, first = flagged[0]
    assert key == first.transaction_id.encode()
    assert (first.threshold, first.threshold_kind) == (0.0, "fixed")
    assert first.event_time == next(t.event_time for t in txs if t.transaction_id == first.transaction_id)
    assert first.model_version.startswith("MinMaxScaler|HST(trees=5,height=6,window=50)")


@pytest.mark.asyncio
async def test_same_verdicts_as_the_pure_detector(agent_module):
    make = lambda: AnomalyDetector(trees=5, height=6, window=50, warmup=100,  # noqa: E731
                                   threshold=RollingQuantileThreshold(0.95, 200), seed=2)
    agent_module.DETECTORS.states[0] = make()
    txs = transactions(600, seed=4, fraud_rate=0.02)
    async with agent_module.detect_anomalies.test_context() as agent:
        for tx in txs:
            await agent.put(key=tx.transaction_id.encode(), value=tx)
    pure = make()
    expected = [tx.transaction_id for tx in txs if pure.process(tx.features()).flagged]
    assert [a.transaction_id for _, a in agent_module.sent] == expected
    assert 0 < len(expected) < 100


@pytest.mark.asyncio
async def test_window_tables_give_the_pure_features(agent_module, monkeypatch):
    from app.windows.tables import WindowTables
    from app.worker import app

    tables = WindowTables(app, prefix="test-anomaly-windows", size=60, step=20, expires=300)
    monkeypatch.setattr(agent_module, "WINDOW_TABLES", tables)
    seen = []
    detector = AnomalyDetector(trees=3, height=4, window=20, warmup=10**9, threshold=FixedThreshold(1.0), seed=1)
    real_process = detector.process
    detector.process = lambda x: (seen.append(x), real_process(x))[1]
    agent_module.DETECTORS.states[0] = detector
    txs = transactions(300, seed=6, n_cards=20, velocity_fraud=True, fraud_rate=0.05)
    async with agent_module.detect_anomalies.test_context() as agent:
        for tx in txs:
            await agent.put(key=tx.transaction_id.encode(), value=tx)
    pure = WindowFeatures(size=60, step=20, expires=300)
    for tx, x in zip(txs, seen, strict=True):
        want = pure.update(tx.card_id, tx.event_time, tx.Amount)
        assert {k: x[k] for k in want} == want
        assert x["V1"] == tx.V1
    # the table holds the same aggregates, under the keys Faust's windowed view reads
    last = txs[-1]
    for window in pure.windows.ranges(last.event_time):
        assert tables.aggregate(last.card_id, window) == pure.aggregate(last.card_id, window)
    assert any(x["win2_count"] >= 3 for x in seen)  # velocity bursts show up


def detector_settings(monkeypatch, module, catch_up=None):
    """The settings the agent builds a new detector from, small for a test (and the module's
    detectors rebuilt to checkpoint at their pace, reading back with ``catch_up``)."""
    import settings

    for name, value in {"ANOMALY_TREES": 5, "ANOMALY_HEIGHT": 6, "ANOMALY_WINDOW": 50, "ANOMALY_WARMUP": 100,
                        "ANOMALY_THRESHOLD_KIND": "quantile", "ANOMALY_QUANTILE": 0.95,
                        "ANOMALY_QUANTILE_WINDOW": 200, "SEED": 3, "ANOMALY_CHECKPOINT_EVERY_EVENTS": 100}.items():
        monkeypatch.setattr(settings, name, value)
    monkeypatch.setattr(module, "DETECTORS", module.detector_states(module.CHECKPOINTS, catch_up=catch_up))


def detector_of(blob: bytes) -> AnomalyDetector:
    return AnomalyDetector.from_checkpoint(open_envelope(blob)[1])


@pytest.mark.asyncio
@pytest.mark.parametrize("resume", [-60, 0, 90], ids=["redelivered", "at-the-checkpoint", "committed-after-it"])
async def test_after_a_crash_the_detector_learns_every_transaction_once(agent_module, monkeypatch, resume):
    """Checkpoints every 100 events; a crash after 450; the consumer resumes ``resume`` events from
    the last checkpoint's position: before it (those are judged again, not learned), right after it,
    or past it (the events between are read back from the topic and learned first)."""
    txs = transactions(700, seed=8, fraud_rate=0.02)
    reads = []

    async def read_back(partition, start, end):
        reads.append((partition, start, end))
        for tx in txs[start:end]:  # offset i holds txs[i]
            yield tx

    detector_settings(monkeypatch, agent_module, catch_up=read_back)
    async with agent_module.detect_anomalies.test_context() as agent:
        for tx in txs[:450]:
            await agent.put(key=tx.transaction_id.encode(), value=tx)
    checkpoints = [(open_envelope(blob)[0], detector_of(blob).events_seen) for _, _, blob in agent_module.written]
    assert len(checkpoints) >= 2 and all(later - earlier >= 100 for (_, earlier), (_, later) in zip(checkpoints, checkpoints[1:]))
    assert {(p, k) for p, k, _ in agent_module.written} == {(0, b"0")}
    assert all(position == seen - 1 for position, seen in checkpoints)  # the offset of the last event learned
    last = checkpoints[-1][1]
    assert agent_module.DETECTORS.checkpointed_at[0] == last

    # the crash: a new worker, the checkpoint recovered from the changelog into its table
    agent_module.CHECKPOINTS.data.update({k: v for _, k, v in agent_module.written})
    detector_settings(monkeypatch, agent_module, catch_up=read_back)
    agent_module.sent.clear()
    start = last + resume
    async with agent_module.detect_anomalies.test_context() as agent:
        agent.sent_offset = start  # the committed offset the consumer resumes at
        for tx in txs[start:]:
            await agent.put(key=tx.transaction_id.encode(), value=tx)
    resumed = agent_module.DETECTORS.states[0]
    assert resumed.events_seen == len(txs)  # from the checkpoint's count, every transaction once
    assert reads == ([(0, last, start)] if resume > 0 else [])
    uninterrupted = AnomalyDetector()  # the same settings
    verdicts = [uninterrupted.process(tx.features()) for tx in txs]
    probes = transactions(50, seed=99, fraud_rate=0.1)
    assert [resumed.judge(tx.features()) for tx in probes] == [uninterrupted.judge(tx.features()) for tx in probes]
    new = max(start, last)
    expected = [tx.transaction_id for tx, v in zip(txs[new:], verdicts[new:]) if v.flagged]
    assert expected and [a.transaction_id for _, a in agent_module.sent][-len(expected):] == expected
    assert len(agent_module.sent) >= len(expected)  # and those judged again, if they passed


def test_an_unusable_checkpoint_gives_a_new_detector(agent_module, monkeypatch, caplog):
    detector_settings(monkeypatch, agent_module)
    agent_module.CHECKPOINTS.data[b"0"] = b"not a checkpoint"
    with caplog.at_level("ERROR"):
        detector = agent_module.DETECTORS.get(0)
    assert detector.events_seen == 0
    assert "partition 0: the anomaly detector checkpoint is unusable" in caplog.text


def test_revoked_partitions_are_checkpointed_and_forgotten(agent_module, monkeypatch):
    detector_settings(monkeypatch, agent_module)
    for partition in (0, 1):
        detector = agent_module.DETECTORS.get(partition)
        for tx in transactions(30, seed=partition):
            detector.process(tx.features())
    agent_module.DETECTORS.get(2)  # nothing learned since it was opened
    agent_module.DETECTORS.checkpoint_and_forget([0, 2])
    assert [(p, k) for p, k, _ in agent_module.written] == [(0, b"0")]  # partition 2 had nothing new
    assert detector_of(agent_module.written[0][2]).events_seen == 30
    assert agent_module.DETECTORS.partitions() == [1] and set(agent_module.DETECTORS.checkpointed_at) == {1}
