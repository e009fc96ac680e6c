"""The anomaly agent in Faust's test context: score then learn, flags reach ``anomalies``, the
detector is checkpointed and restored."""
from __future__ import annotations

import pytest

from app.agents import anomaly as anomaly_agents
from app.anomaly import AnomalyDetector, FixedThreshold, RollingQuantileThreshold
from app.anomaly.partitions import AnomalyDetectors
from app.data.synthetic import generate
from app.records import Transaction
from app.replay import to_transaction
from app.state.checkpointed import open_envelope
from tests.fakes import ChangelogTable, agent_app, agent_topics


def transactions(n: int, seed: int, **kwargs) -> list[Transaction]:
    rows = generate(n, seed=seed, **kwargs)
    return [Transaction(**to_transaction(r, f"tx-{i}", 1_700_000_000.0, True)) for i, r in enumerate(rows)]


class Harness:
    """The anomaly agent on a test app, with its detectors, table and recorded output."""

    def __init__(self, new=AnomalyDetector, every: int = 10_000, catch_up=None, windows=None):
        self.app = agent_app("test-anomaly")
        self.topics = agent_topics(self.app)
        self.table = ChangelogTable()
        self.detectors = AnomalyDetectors(self.table, new, every=every, catch_up=catch_up,
                                          windows=windows)
        self.agent = anomaly_agents.register(self.app, self.topics, self.detectors, batch_size=200, within_s=0.05,
                                             counts_input=True)

    @property
    def sent(self):
        return self.topics.anomalies.sent

    @property
    def written(self):
        return self.table.written

    async def put(self, txs, resume_at: int | None = None) -> None:
        async with self.agent.test_context() as agent:
            if resume_at is not None:
                agent.sent_offset = resume_at  # the committed offset the consumer resumes at
            for tx in txs:
                await agent.put(key=tx.transaction_id.encode(), value=tx)


@pytest.fixture
def harness():
    return Harness()


@pytest.mark.asyncio
async def test_flags_above_a_fixed_threshold_with_the_transaction_id(harness):
    detector = AnomalyDetector(trees=5, height=6, window=50, warmup=100, threshold=FixedThreshold(0.0), seed=1)
    harness.detectors.states.states[0] = detector
    txs = transactions(150, seed=1)
    await harness.put(txs)
    assert detector.events_seen == 150
    flagged = harness.sent
    # HST scores are 0 during its first reference window, so a 0.0 threshold flags scores above 0 only
    assert flagged and all(a.score > 0.0 for _, a in flagged)
    assert {a.transaction_id for _, a in flagged} <= {tx.transaction_id for tx in txs[100:]}
    key, first = flagged[0]
    assert key == first.transaction_id.encode()
    assert (first.threshold, first.threshold_kind) == (0.0, "fixed")
    assert first.event_time == next(t.event_time for t in txs if t.transaction_id == first.transaction_id)
    assert first.model_version.startswith("MinMaxScaler|HST(trees=5,height=6,window=50)")


@pytest.mark.asyncio
async def test_same_verdicts_as_the_pure_detector(harness):
    make = lambda: AnomalyDetector(trees=5, height=6, window=50, warmup=100,  # noqa: E731
                                   threshold=RollingQuantileThreshold(0.95, 200), seed=2)
    harness.detectors.states.states[0] = make()
    txs = transactions(600, seed=4, fraud_rate=0.02)
    await harness.put(txs)
    pure = make()
    expected = [tx.transaction_id for tx in txs if pure.process(tx.features()).flagged]
    assert [a.transaction_id for _, a in harness.sent] == expected
    assert 0 < len(expected) < 100


@pytest.mark.asyncio
async def test_window_features_are_the_pure_ones_and_written_once():
    """With windows the detector's input is the pure driver's (card windows from its own table,
    calendar flags), each card's record goes to the table's changelog, and a redelivered batch
    (a restarted consumer from an older offset) is judged again without counting its cards twice."""
    import settings
    from app import configured
    from app.data.simulator import CONFIGS, load
    from app.features.stream import StreamFeatures
    from app.scoring.windows import ScoringWindows, decode_card

    features = configured.transaction_features(settings)
    cards = ChangelogTable()
    windows = ScoringWindows(features, cards, ChangelogTable(), send_label=None)
    harness = Harness(windows=windows)
    seen = []
    detector = AnomalyDetector(trees=3, height=4, window=20, warmup=10**9, threshold=FixedThreshold(1.0), seed=1)
    real_process, real_judge = detector.process, detector.judge
    detector.process = lambda x: (seen.append(x), real_process(x))[1]
    harness.detectors.states.states[0] = detector
    sim = load(CONFIGS["small"], 0)
    rows = [row for _, row in zip(range(4000), sim.rows(0, None)) if int(row["card_id"].split("-")[-1]) < 30]
    txs = [Transaction(**to_transaction(row, f"tx-{i}", 0.0, False)) for i, row in enumerate(rows)]
    await harness.put(txs)
    pure = StreamFeatures(features)
    want = [{**tx.features(), **pure.transaction({"event_time": tx.event_time, "card_id": tx.card_id,
                                                     "terminal_id": tx.terminal_id, "Amount": tx.Amount})}
            for tx in txs]
    assert len(seen) == len(txs) > 100
    for x, expected in zip(seen, want, strict=True):
        assert {k: x[k] for k in expected} == pytest.approx(expected, rel=1e-12)
    assert any(x["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] >= 2 for x in seen)
    written = len(cards.written)
    assert written == len(txs)
    card = txs[-1].card_id.encode()
    assert decode_card(cards.data[card])[1]["offset"] == len(txs) - 1

    seen.clear()
    detector.judge = lambda x: (seen.append(x), real_judge(x))[1]  # what a detector does with an event it learned
    await harness.put(txs[-10:], resume_at=len(txs) - 10)  # the last 10 again, at their offsets
    assert len(cards.written) == written  # nothing counted twice
    assert seen == want[-10:]


def small_detector() -> AnomalyDetector:
    """A detector small enough for a test, as the worker would build it from its settings."""
    return AnomalyDetector(trees=5, height=6, window=50, warmup=100,
                           threshold=RollingQuantileThreshold(0.95, 200), seed=3)


def detector_of(blob: bytes) -> AnomalyDetector:
    return AnomalyDetector.from_checkpoint(open_envelope(blob)[1])


@pytest.mark.asyncio
@pytest.mark.parametrize("resume", [-60, 0, 90], ids=["redelivered", "at-the-checkpoint", "committed-after-it"])
async def test_after_a_crash_the_detector_learns_every_transaction_once(resume):
    """Checkpoints every 100 events; a crash after 450; the consumer resumes ``resume`` events from
    the last checkpoint's position: before it (those are judged again, not learned), right after it,
    or past it (the events between are read back from the topic and learned first)."""
    txs = transactions(700, seed=8, fraud_rate=0.02)
    reads = []

    async def read_back(partition, start, end):
        reads.append((partition, start, end))
        for tx in txs[start:end]:  # offset i holds txs[i]
            yield tx

    first = Harness(small_detector, every=100, catch_up=read_back)
    await first.put(txs[:450])
    checkpoints = [(open_envelope(blob)[0], detector_of(blob).events_seen) for _, _, blob in first.written]
    assert len(checkpoints) >= 2 and all(later - earlier >= 100 for (_, earlier), (_, later) in zip(checkpoints, checkpoints[1:]))
    assert {(p, k) for p, k, _ in first.written} == {(0, b"0")}
    assert all(position == seen - 1 for position, seen in checkpoints)  # the offset of the last event learned
    last = checkpoints[-1][1]
    assert first.detectors.states.checkpointed_at[0] == last

    # the crash: a new worker, the checkpoint recovered from the changelog into its table
    second = Harness(small_detector, every=100, catch_up=read_back)
    second.table.data.update({k: v for _, k, v in first.written})
    start = last + resume
    await second.put(txs[start:], resume_at=start)
    resumed = second.detectors.states.states[0]
    assert resumed.events_seen == len(txs)  # from the checkpoint's count, every transaction once
    assert reads == ([(0, last, start)] if resume > 0 else [])
    uninterrupted = small_detector()
    verdicts = [uninterrupted.process(tx.features()) for tx in txs]
    probes = transactions(50, seed=99, fraud_rate=0.1)
    assert [resumed.judge(tx.features()) for tx in probes] == [uninterrupted.judge(tx.features()) for tx in probes]
    new = max(start, last)
    expected = [tx.transaction_id for tx, v in zip(txs[new:], verdicts[new:]) if v.flagged]
    assert expected and [a.transaction_id for _, a in second.sent][-len(expected):] == expected
    assert len(second.sent) >= len(expected)  # and those judged again, if they passed


def test_an_unusable_checkpoint_gives_a_new_detector(caplog):
    harness = Harness(small_detector, every=100)
    harness.table.data[b"0"] = b"not a checkpoint"
    with caplog.at_level("ERROR"):
        detector = harness.detectors.states.get(0)
    assert detector.events_seen == 0
    assert "partition 0: the anomaly detector checkpoint is unusable" in caplog.text


@pytest.mark.asyncio
async def test_revoked_partitions_are_checkpointed_and_forgotten():
    harness = Harness(small_detector, every=100)
    states = harness.detectors.states
    for partition in (0, 1):
        detector = states.get(partition)
        for tx in transactions(30, seed=partition):
            detector.process(tx.features())
    states.get(2)  # nothing learned since it was opened
    await harness.detectors.revoked({"transactions": {0, 2}, "scores": {1}})
    assert [(p, k) for p, k, _ in harness.written] == [(0, b"0")]  # partition 2 had nothing new
    assert detector_of(harness.written[0][2]).events_seen == 30
    assert states.partitions() == [1] and set(states.checkpointed_at) == {1}


@pytest.mark.asyncio
async def test_a_revocation_during_a_checkpoint_in_its_thread_waits_for_it_and_writes_it_once():
    """The detector due for a checkpoint is pickled in a worker thread while the event loop goes
    on; a revocation that comes meanwhile waits for that checkpoint rather than writing its own."""
    import asyncio

    from tests.state.test_checkpointed import Gate, until

    harness = Harness(small_detector, every=30)
    detectors, states = harness.detectors, harness.detectors.states
    gate = states.dump = Gate(AnomalyDetector.to_checkpoint)
    for offset, tx in enumerate(transactions(30, seed=5)):
        await detectors.ready(0, offset)
        detectors.process(tx, 0, offset)
    after = asyncio.ensure_future(detectors.after_batch({0}))
    await until(gate.entered.is_set)
    revoking = asyncio.ensure_future(detectors.revoked({"transactions": {0}}))
    await asyncio.sleep(0.02)
    assert not revoking.done() and harness.written == []
    gate.opened.set()
    await asyncio.gather(after, revoking)
    assert [(p, k) for p, k, _ in harness.written] == [(0, b"0")]
    restored = detector_of(harness.written[0][2])
    assert restored.events_seen == 30 and open_envelope(harness.written[0][2])[0] == 29
    assert states.partitions() == []


@pytest.mark.asyncio
async def test_events_queued_before_their_partition_was_revoked_are_left_to_the_new_owner(caplog):
    import types

    harness = Harness(small_detector)
    detect = anomaly_agents.detect_step(harness.topics, harness.detectors, counts_input=False)
    txs = transactions(40, seed=6)
    batch = [types.SimpleNamespace(message=types.SimpleNamespace(partition=i % 2, offset=i // 2), value=tx)
             for i, tx in enumerate(txs)]
    queued = await detect(batch)
    await harness.detectors.revoked({"transactions": {1}})  # before the queued work ran
    with caplog.at_level("INFO"):
        await queued
    assert harness.detectors.states.partitions() == [0]  # no detector made again for partition 1
    assert harness.detectors.states.get(0).events_seen == 20
    assert "skipped 20 transactions of transactions taken before their partitions were revoked" in caplog.text


@pytest.mark.parametrize("ratios", [True, False])
def test_the_workers_anomaly_window_features_take_the_amount_ratios_setting(ratios):
    """With ``ANOMALY_WINDOW_FEATURES``, the detectors the worker builds
    (:func:`app.service.anomaly_detectors`) see the scorer's window features, ``CARD_AMOUNT_RATIOS``
    included: a card's amount over its mean amount in each window, or the Handbook's windows alone."""
    import types

    import settings
    from app import service
    from app.features import TransactionFeatures
    from app.scoring.windows import encode_card

    s = types.SimpleNamespace(**{**vars(settings), "ANOMALY_WINDOW_FEATURES": True, "CARD_AMOUNT_RATIOS": ratios})
    detectors = service.anomaly_detectors(agent_app("anomaly-ratios"), s, types.SimpleNamespace(
        record_decoder=lambda *args, **kwargs: None))
    ratio_names = [f"CUSTOMER_ID_AMOUNT_OVER_AVG_{k}DAY_WINDOW" for k in (1, 7, 30)]
    assert [n for n in detectors.windows.names if "OVER_AVG" in n] == (ratio_names if ratios else [])
    tx = transactions(1, seed=1)[0]
    state, _ = TransactionFeatures().card(None, tx.event_time - 3600, tx.Amount / 2, offset=0)
    detectors.windows.card_table.data[b"card-1"] = encode_card(0, state)
    x = detectors.windows.preview(Transaction(**{**tx.to_dict(), "card_id": "card-1"}), tx.features(), 0)
    mean = (tx.Amount / 2 + tx.Amount) / 2
    assert x["CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW"] == pytest.approx(mean)
    assert {n: x.get(n) for n in ratio_names} == (
        {n: pytest.approx(tx.Amount / mean) for n in ratio_names} if ratios else {n: None for n in ratio_names})
