"""The anomaly agent in Faust's test context: score then learn, flags reach ``anomalies``."""
from __future__ import annotations

from unittest import mock

import pytest

from app.anomaly import AnomalyDetector, FixedThreshold, RollingQuantileThreshold
from app.data.synthetic import generate
from app.records import Transaction
from app.replay import to_transaction
from app.windows import WindowFeatures


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
    monkeypatch.setattr(module, "DETECTORS", {})
    module.sent = sent
    return module


@pytest.mark.asyncio
async def test_flags_above_a_fixed_threshold_with_the_transaction_id(agent_module):
    detector = AnomalyDetector(trees=5, height=6, window=50, warmup=100, threshold=FixedThreshold(0.0), seed=1)
    agent_module.DETECTORS[0] = detector
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
    agent_module.DETECTORS[0] = make()
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
    agent_module.DETECTORS[0] = detector
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
