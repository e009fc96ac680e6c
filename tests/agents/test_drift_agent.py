import random
import types

import pytest

import settings
from app.agents import drift as agent
from app.drift import ChallengerSlot, make_mitigation
from app.records import Score, Transaction
from app.state.checkpointed import open_envelope
from tests.fakes import ChangelogTable


def fresh_monitors(monkeypatch, table: ChangelogTable, catch_up=None) -> None:
    """The agent's per-partition monitors and challenger slots, empty, checkpointed to ``table``
    (at the pace in settings), reading back with ``catch_up`` after a crash."""
    monkeypatch.setattr(agent, "CHECKPOINTS", table)
    monkeypatch.setattr(agent, "FEATURE_MONITORS", agent.monitor_states(table, "features", agent.new_feature_monitor,
                                                                        catch_up=catch_up))
    monkeypatch.setattr(agent, "SCORE_MONITORS", agent.monitor_states(table, "scores", agent._new_score_monitor,
                                                                      catch_up=catch_up))
    monkeypatch.setattr(agent, "CHALLENGERS", agent.challenger_states(table, catch_up=catch_up))


def restored(monitor, blob: bytes):
    """``monitor`` restored from a checkpoint as stored in the table."""
    return monitor.restore(open_envelope(blob)[1])


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch):
    monkeypatch.setattr(agent, "_warned", set())
    monkeypatch.setattr(settings, "DRIFT_FEATURES", ["Amount"])
    monkeypatch.setattr(settings, "DRIFT_FEATURE_TRANSFORM", "log1p")
    monkeypatch.setattr(settings, "DRIFT_DELTA", 0.002)
    monkeypatch.setattr(settings, "DRIFT_CLOCK", 32)
    monkeypatch.setattr(settings, "DRIFT_SCORE_DIRECTION", "increase")
    monkeypatch.setattr(settings, "DRIFT_ERROR_DIRECTION", "increase")
    fresh_monitors(monkeypatch, ChangelogTable())


def _tx(i, amount, label=None, **columns):
    return Transaction(transaction_id=f"t-{i}", event_time=1000.0 + i,
                       **{f"V{k}": columns.get(f"V{k}", 0.0) for k in range(1, 29)}, Amount=amount, Class=label)


def _score(i, decision, label, partition=0):
    return Score(transaction_id=f"t-{i}", event_time=1000.0 + i, fraud_probability=0.9 if decision else 0.1,
                 decision=decision, threshold=0.5, model_version="m-7", events_learned=i, processing_time=0.0,
                 label=label, partition=partition, offset=i)


class Learner:
    def __init__(self):
        self.reset()

    def reset(self):
        self.learned = 0

    def learn(self, x, y):
        self.learned += 1

    def predict_proba(self, x):
        return 0.5


def _fake_scoring(monkeypatch, learners):
    replaced = {}

    def replace_learner(partition, learner):
        replaced[partition] = learner
        learners[partition] = learner

    module = types.SimpleNamespace(LEARNERS=learners, replace_learner=replace_learner)
    monkeypatch.setitem(__import__("sys").modules, "app.agents.scoring", module)
    return replaced


def _error_stream(n_before=4000, n_after=4000, seed=0):
    rng = random.Random(seed)
    for i in range(n_before + n_after):
        rate = 0.05 if i < n_before else 0.4
        label = int(rng.random() < 0.5)
        wrong = rng.random() < rate
        yield _score(i, bool(label) != wrong, label)


def test_an_amount_shift_becomes_one_alert_with_its_provenance():
    rng = random.Random(1)
    alerts = []
    for i in range(6000):
        amount = rng.lognormvariate(3.0, 1.0) * (1 if i < 3000 else 4)
        alerts += agent.observe_transaction(_tx(i, amount), partition=2, offset=i)
    assert len(alerts) == 1
    a = alerts[0]
    assert a.stream == "feature:Amount" and a.partition == 2 and a.offset == a.position - 1
    assert 3000 < a.position < 3500 and a.transaction_id == f"t-{a.offset}"
    assert a.mean_after > a.mean_before and a.mitigation == "none" and "log1p" in a.detector


def test_error_drift_alerts_and_resets_the_partition_learner(monkeypatch):
    monkeypatch.setattr(settings, "DRIFT_MITIGATION", "reset")
    monkeypatch.setattr(agent, "MITIGATION", make_mitigation("reset"))
    live = Learner()
    live.learned = 500
    _fake_scoring(monkeypatch, {0: live})
    alerts = [a for s in _error_stream() for a in agent.observe_score(s)]
    errors = [a for a in alerts if a.stream == "error"]
    assert errors and 4000 < errors[0].position < 5000
    assert errors[0].mitigation == "reset" and errors[0].model_version == "m-7"
    assert live.learned == 0
    # the reset learner is a new model: its score and error detectors started over at the alarm
    assert agent.score_monitor(0).count("error") == 8000 - errors[0].position


def test_a_v_column_spread_change_alerts_on_its_feature_stream(monkeypatch):
    monkeypatch.setattr(settings, "DRIFT_FEATURES", ["Amount", "V1", "V2", "V3"])
    monkeypatch.setattr(settings, "DRIFT_FEATURE_TRANSFORM", "log1p_abs")
    rng = random.Random(2)
    alerts = []
    for i in range(6000):
        v1 = rng.gauss(0, 2.0) if i < 3000 else rng.gauss(0, 0.6)  # another column's values from row 3000
        alerts += agent.observe_transaction(_tx(i, rng.lognormvariate(3.0, 1.0), V1=v1, V2=rng.gauss(0, 1),
                                                V3=rng.gauss(0, 1)), partition=0, offset=i)
    assert [a.stream for a in alerts] == ["feature:V1"]
    assert 3000 < alerts[0].position < 3300 and alerts[0].mean_after < alerts[0].mean_before
    assert "log1p_abs" in alerts[0].detector


def test_falling_scores_of_a_learning_model_raise_no_alert():
    alerts = []
    for i in range(6000):
        s = _score(i, False, None)
        s.fraud_probability = 0.5 * 0.999 ** i  # a cold model learning the base rate
        alerts += agent.observe_score(s)
    assert alerts == [] and agent.score_monitor(0).suppressed >= 1


def test_challenger_started_at_the_warning_is_promoted(monkeypatch):
    monkeypatch.setattr(settings, "DRIFT_MITIGATION", "challenger")
    monkeypatch.setattr(settings, "DRIFT_WARNING_DELTA", 0.5)
    policy = make_mitigation("challenger", min_events=1)
    monkeypatch.setattr(agent, "MITIGATION", policy)
    live = Learner()
    replaced = _fake_scoring(monkeypatch, {0: live})
    promoted = None
    for s in _error_stream(seed=3):
        # the labelled transaction reaches the drift agent too (feeding a running challenger)
        tx = _tx(s.offset, 10.0, s.label)
        agent.observe_transaction(tx, partition=0, offset=s.offset)
        agent.teach_challenger(tx, partition=0)
        for a in agent.observe_score(s):
            if a.stream == "error" and promoted is None:
                promoted = a.mitigation
    assert promoted in ("challenger", "reset")  # reset when the warning came with the drift
    if promoted == "challenger":
        assert replaced[0] is not live and replaced[0].learned >= 1


def test_without_scoring_learners_mitigation_is_unavailable(monkeypatch):
    monkeypatch.setattr(settings, "DRIFT_MITIGATION", "reset")
    monkeypatch.delitem(__import__("sys").modules, "app.agents.scoring", raising=False)
    alerts = [a for s in _error_stream() for a in agent.observe_score(s) if a.stream == "error"]
    assert alerts and alerts[0].mitigation == "unavailable"


def test_score_stream_alerts_never_mitigate(monkeypatch):
    monkeypatch.setattr(settings, "DRIFT_MITIGATION", "reset")
    live = Learner()
    live.learned = 9
    _fake_scoring(monkeypatch, {0: live})
    alerts = []
    for i in range(4000):
        s = _score(i, False, None)
        s.fraud_probability = 0.1 if i < 2000 else 0.6
        alerts += agent.observe_score(s)
    assert [a.stream for a in alerts] == ["score"] and alerts[0].mitigation == "none" and live.learned == 9


def test_publish_counts_alerts(monkeypatch):
    import asyncio

    from app import metrics

    sent = []

    async def send(key, value):
        sent.append((key, value))

    monkeypatch.setattr(agent.drift_alerts, "send", send)
    before = metrics.DRIFT_ALERTS.labels(stream="score")._value.get()
    detection = agent.Detection("score", "drift", 10, 0.1, 0.5, 4, "ADWIN(delta=0.002,clock=32)")
    asyncio.run(agent.publish([agent.alert(detection, "none", event_time=1.0, transaction_id="t-9", partition=0,
                                           offset=9)]))
    assert sent[0][0] == b"t-9" and sent[0][1].position == 10
    assert metrics.DRIFT_ALERTS.labels(stream="score")._value.get() == before + 1


# --- checkpoints ------------------------------------------------------------------------------------
def _amount_shift(n: int = 6000, at: int = 3000, seed: int = 5) -> list[Transaction]:
    rng = random.Random(seed)
    return [_tx(i, rng.lognormvariate(3.0 if i < at else 4.5, 1.0)) for i in range(n)]


async def _run_feature_agent(txs: list[Transaction], first_offset: int = 0) -> None:
    async with agent.monitor_transactions.test_context() as running:
        running.sent_offset = first_offset
        for tx in txs:
            await running.put(key=tx.transaction_id.encode(), value=tx)


@pytest.mark.asyncio
@pytest.mark.parametrize("resume", [-700, 0, 400], ids=["redelivered", "at-the-checkpoint", "committed-after-it"])
async def test_feature_monitors_are_checkpointed_and_a_restart_alerts_as_if_uninterrupted(monkeypatch, resume):
    """Checkpoints every 1,000 values; a crash after 2,500; the consumer resumes ``resume`` values
    from the last checkpoint: before it (skipped), right after it, or past it (read back and fed)."""
    monkeypatch.setattr(settings, "DRIFT_CHECKPOINT_EVERY_VALUES", 1000)
    txs = _amount_shift()
    reads = []

    async def read_back(partition, start, end):
        reads.append((partition, start, end))
        for tx in txs[start:end]:  # offset i holds txs[i]
            yield tx

    table = ChangelogTable()
    fresh_monitors(monkeypatch, table, catch_up=read_back)
    sent = []

    async def send(key, value):
        sent.append(value)

    monkeypatch.setattr(agent.drift_alerts, "send", send)
    pure = agent.new_feature_monitor()
    expected = [d.position for d in (pure.update("feature:Amount", tx.Amount) for tx in txs) if d and d.kind == "drift"]
    assert expected and expected[0] > 3000

    await _run_feature_agent(txs[:2500])
    assert [(p, k) for p, k, _ in table.written] == [(0, b"features:0")] * 2  # at 1,000 and 2,000 values
    assert [open_envelope(blob)[0] for _, _, blob in table.written] == [999, 1999]  # the last offsets taken in
    last = restored(agent.new_feature_monitor(), table.written[-1][2]).updates
    assert last == 2000 and agent.FEATURE_MONITORS.checkpointed_at[0] == 2000
    table.data[b"features:0"] = table.written[-1][2]  # what the changelog gives back

    # a crash: a new worker's monitors; the consumer resumes at the committed offset
    fresh_monitors(monkeypatch, table, catch_up=read_back)
    start = last + resume
    await _run_feature_agent(txs[start:], first_offset=start)
    assert [a.position for a in sent] == expected  # not a fresh window that misses or delays the change
    assert agent.FEATURE_MONITORS.get(0).updates == len(txs)  # every value once
    assert reads == ([(0, last, start)] if resume > 0 else [])


@pytest.mark.asyncio
async def test_score_monitors_catch_up_on_the_scores_committed_after_their_checkpoint(monkeypatch):
    monkeypatch.setattr(settings, "DRIFT_CHECKPOINT_EVERY_VALUES", 100)
    rng = random.Random(3)
    stream = [_score(i, rng.random() < 0.5, rng.random() < 0.5) for i in range(400)]

    async def read_back(partition, start, end):
        for score in stream[start:end]:
            yield score

    table = ChangelogTable()
    fresh_monitors(monkeypatch, table, catch_up=read_back)

    async def run(scores, first_offset):
        async with agent.monitor_scores.test_context() as running:
            running.sent_offset = first_offset
            for s in scores:
                await running.put(key=s.transaction_id.encode(), value=s)

    await run(stream[:250], 0)
    position, blob = open_envelope(table.written[-1][2])
    table.data[b"scores:0"] = table.written[-1][2]
    fresh_monitors(monkeypatch, table, catch_up=read_back)
    await run(stream[position + 31:], position + 31)  # 30 scores committed after the checkpoint
    uninterrupted = agent._new_score_monitor()
    for s in stream:
        for name, value in agent.score_values(s):
            uninterrupted.update(name, value)
    resumed = agent.SCORE_MONITORS.get(0)
    assert resumed.updates == uninterrupted.updates == 400 + sum(s.label is not None for s in stream)
    assert [resumed.count(name) for name in ("score", "error")] == [uninterrupted.count(name) for name in ("score", "error")]


def test_a_checkpoint_of_other_adwin_settings_gives_an_empty_monitor(monkeypatch, caplog):
    old = agent.new_feature_monitor()
    for tx in _amount_shift(500):
        old.update("feature:Amount", tx.Amount)
    table = ChangelogTable()
    table.data[b"features:0"] = old.to_checkpoint()  # (stored before positions were kept: still read)
    monkeypatch.setattr(settings, "DRIFT_DELTA", 0.01)
    fresh_monitors(monkeypatch, table)
    with caplog.at_level("ERROR"):
        monitor = agent.feature_monitor(0)
    assert monitor.updates == 0 and monitor.delta == 0.01
    assert "partition 0: the features drift monitor checkpoint is unusable" in caplog.text
    assert "delta=0.002" in caplog.text


def test_revoked_partitions_monitors_are_checkpointed_and_forgotten(monkeypatch):
    import asyncio

    from faust.types import TP

    table = ChangelogTable()
    fresh_monitors(monkeypatch, table)
    agent.observe_transaction(_tx(1, 20.0), partition=0, offset=1)
    agent.observe_score(_score(1, False, 0, partition=1))
    agent.feature_monitor(2)  # nothing seen since it was opened: nothing to write
    revoked = {TP(settings.TRANSACTIONS_TOPIC, 0), TP(settings.TRANSACTIONS_TOPIC, 2), TP(settings.SCORES_TOPIC, 1)}
    asyncio.run(agent._on_partitions_revoked(None, revoked=revoked))
    assert sorted((p, k) for p, k, _ in table.written) == [(0, b"features:0"), (1, b"scores:1")]
    monitor = restored(agent.new_feature_monitor(), table.written[0][2] if table.written[0][0] == 0 else table.written[1][2])
    assert monitor.count("feature:Amount") == 1
    assert agent.FEATURE_MONITORS.partitions() == [] and agent.SCORE_MONITORS.partitions() == []


# --- challenger checkpoints --------------------------------------------------------------------------
class Recording:
    """A learner that remembers the amount of each transaction it learned, in order."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.amounts = []

    def learn(self, x, y):
        self.amounts.append(x["Amount"])

    def predict_proba(self, x):
        return 0.5


def _challenger_policy(monkeypatch):
    """The challenger policy over the agent's (checkpointed) slots, as a worker builds it."""
    monkeypatch.setattr(agent, "MITIGATION", make_mitigation("challenger", min_events=1,
                                                             slots=lambda partition: agent.CHALLENGERS.get(partition)))


@pytest.mark.asyncio
@pytest.mark.parametrize("resume", [-70, 0, 30], ids=["redelivered", "at-the-checkpoint", "committed-after-it"])
async def test_a_running_challenger_is_checkpointed_and_a_restart_teaches_it_every_label_once(monkeypatch, resume):
    """A challenger started at a warning, checkpointed every 100 changes; a crash after 250
    transactions; the consumer resumes ``resume`` transactions from the last checkpoint's position:
    before it (skipped), right after it, or past it (read back and learned)."""
    monkeypatch.setattr(settings, "DRIFT_MITIGATION", "challenger")
    monkeypatch.setattr(settings, "DRIFT_CHALLENGER_CHECKPOINT_EVERY", 100)
    monkeypatch.setattr(settings, "DRIFT_FEATURES", [])  # the transactions agent runs for the challenger alone
    txs = [_tx(i, float(i), label=None if i % 5 == 0 else int(i % 3 == 0)) for i in range(600)]  # 1 in 5 unlabelled
    labelled = [tx for tx in txs if tx.Class is not None]
    reads = []

    async def read_back(partition, start, end):
        reads.append((partition, start, end))
        for tx in txs[start:end]:
            yield tx

    table = ChangelogTable()
    fresh_monitors(monkeypatch, table, catch_up=read_back)
    _challenger_policy(monkeypatch)
    assert agent.MITIGATION.on_warning(0, Recording())  # started before the first transaction
    await _run_feature_agent(txs[:250])
    written = [v for _, k, v in table.written if k == b"challenger:0"]
    assert written  # at the end of a batch, once 100 changes were made
    position, blob = open_envelope(written[-1])
    assert 70 <= position <= 250 - 1 - 30  # so that each resume lies within what was consumed
    assert ChallengerSlot.from_checkpoint(blob).events == sum(tx.Class is not None for tx in txs[:position + 1])
    table.data[b"challenger:0"] = written[-1]  # what the changelog gives back

    # a crash: a new worker's slots and policy; the consumer resumes at the committed offset
    fresh_monitors(monkeypatch, table, catch_up=read_back)
    _challenger_policy(monkeypatch)
    start = position + 1 + resume
    await _run_feature_agent(txs[start:], first_offset=start)
    amounts = [tx.Amount for tx in labelled]
    slot = agent.CHALLENGERS.get(0)
    assert slot.learner.amounts == amounts and slot.events == len(amounts)  # each label once, in order
    assert reads == ([(0, position + 1, start)] if resume > 0 else [])
    outcome = agent.MITIGATION.on_drift(0, Recording())
    assert outcome.action == "challenger" and outcome.learner.amounts == amounts


def test_revoked_partitions_challengers_are_checkpointed_and_forgotten(monkeypatch):
    import asyncio

    from faust.types import TP

    monkeypatch.setattr(settings, "DRIFT_MITIGATION", "challenger")
    table = ChangelogTable()
    fresh_monitors(monkeypatch, table)
    _challenger_policy(monkeypatch)
    agent.MITIGATION.on_warning(0, Recording())
    agent.teach_challenger(_tx(1, 20.0, label=1), partition=0)
    asyncio.run(agent._on_partitions_revoked(None, revoked={TP(settings.TRANSACTIONS_TOPIC, 0)}))
    blobs = [v for _, k, v in table.written if k == b"challenger:0"]
    assert len(blobs) == 1 and ChallengerSlot.from_checkpoint(open_envelope(blobs[0])[1]).learner.amounts == [20.0]
    assert agent.CHALLENGERS.partitions() == []


def test_a_challenger_start_and_its_promotion_are_checkpointed_at_once(monkeypatch):
    """Both come from the score stream, which a restored slot's catch-up does not replay."""
    monkeypatch.setattr(settings, "DRIFT_MITIGATION", "challenger")
    monkeypatch.setattr(settings, "DRIFT_MITIGATE_ON", ["error"])
    table = ChangelogTable()
    fresh_monitors(monkeypatch, table)
    _challenger_policy(monkeypatch)
    replaced = _fake_scoring(monkeypatch, {0: Recording()})

    def slots_written():
        return [ChallengerSlot.from_checkpoint(open_envelope(v)[1]) for _, k, v in table.written if k == b"challenger:0"]

    agent.on_warning(0, agent.Detection("error", "warning", 40, 0.05, 0.2, 64, "ADWIN(delta=0.1,clock=32)"))
    started, = slots_written()
    assert started.learner is not None and started.events == 0
    agent.teach_challenger(_tx(1, 5.0, label=1), partition=0)
    action = agent.mitigate(0, agent.Detection("error", "drift", 90, 0.05, 0.4, 128, "ADWIN(delta=0.002,clock=32)"))
    assert action == "challenger" and replaced[0].amounts == [5.0]
    assert [slot.learner is None for slot in slots_written()] == [False, True]  # the promotion, written at once
    fresh_monitors(monkeypatch, table)  # a crash now: the next worker's slot has no challenger to promote again
    table.data[b"challenger:0"] = table.written[-1][2]
    assert agent.CHALLENGERS.get(0).learner is None
