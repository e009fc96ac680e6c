"""The drift watch and its agents: alerts with their provenance, mitigation of the scorer's live
learners, and the checkpoints that let a restarted worker alert as if it had never stopped."""
from __future__ import annotations

import random

import pytest
from faust.types import TP

from app import metrics, outputs
from app.agents import drift as drift_agents
from app.agents import lifecycle
from app.drift import ChallengerSlot, Detection, make_mitigation
from app.drift.detectors import feature_monitor, score_monitor
from app.drift.watch import DriftWatch, alert, score_values
from app.records import Score, Transaction
from app.state.checkpointed import open_envelope
from tests.fakes import ChangelogTable, SentRecords, agent_app, agent_topics

TRANSACTIONS, SCORES = "transactions", "scores"  # the topics of agent_topics()
WITHIN_S = 3.0  # batches close at 200 events, not on a timer of a loaded machine (the last one at the end)


def new_feature_monitor(features=("Amount",), transform: str = "log1p", delta: float = 0.002):
    """The tests' input monitor: ADWIN(delta, clock=32) on each feature after ``transform``."""
    return feature_monitor(features=list(features), transform=transform, delta=delta, clock=32)


def new_score_monitor(warning_delta: float | None = None, settle: int = 0):
    """The tests' score and error monitor: ADWIN(0.002, clock=32), alarming on increases, watching
    the values of models that learned ``settle`` events (none waits by default)."""
    return score_monitor(delta=0.002, clock=32, warning_delta=warning_delta, score_direction="increase",
                         error_direction="increase", settle=settle)


def make_watch(table=None, *, features=("Amount",), transform: str = "log1p", delta: float = 0.002,
               mitigation: str = "none", warning_delta: float = 0.1, min_events: int = 200,
               **overrides) -> DriftWatch:
    """A drift watch over ``table`` (a fresh :class:`ChangelogTable` by default) built as the worker
    builds one: ``features`` through ``transform``, the ``mitigation`` policy (``min_events``) over
    the watch's checkpointed challenger slots, a warning detector of ``warning_delta`` on the score
    monitor with the challenger mitigation, mitigation on ``error`` alarms, no scorer; ``overrides``
    are further :class:`DriftWatch` keyword arguments (``learners``, ``read_back``, paces...)."""
    warning = warning_delta if mitigation == "challenger" else None
    params = dict(
        new_feature_monitor=lambda: new_feature_monitor(features, transform, delta),
        new_score_monitor=lambda: new_score_monitor(warning), features=list(features), mitigation=mitigation,
        mitigate_on=("error",), policy=lambda slots: make_mitigation(mitigation, min_events=min_events, slots=slots),
    )
    return DriftWatch(ChangelogTable() if table is None else table, **{**params, **overrides})


class FakeScorer:
    """What the watch uses of the scorer: its live learner per partition and ``replace_learner``
    (each replacement is also recorded in ``replaced``)."""

    def __init__(self, learners: dict):
        self.learners = learners
        self.replaced: dict = {}

    def replace_learner(self, partition, learner) -> None:
        self.replaced[partition] = learner
        self.learners[partition] = learner


def restored(monitor, blob: bytes):
    """``monitor`` restored from a checkpoint as stored in the table."""
    return monitor.restore(open_envelope(blob)[1])


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


def _error_stream(n_before=4000, n_after=4000, seed=0):
    rng = random.Random(seed)
    for i in range(n_before + n_after):
        rate = 0.05 if i < n_before else 0.4
        label = int(rng.random() < 0.5)
        wrong = rng.random() < rate
        yield _score(i, bool(label) != wrong, label)


async def run_agents(watch, values, first_offset: int = 0, *, scores: bool = False, monitor_features: bool = True,
                     challengers: bool = False):
    """Put ``values`` (transactions, or with ``scores`` scores) through the drift agent of ``watch``
    on a test app, the consumer starting at ``first_offset``; what it sent to ``drift-alerts``."""
    app = agent_app("test-drift")
    topics = agent_topics(app)
    agents = drift_agents.register(app, topics, watch, batch_size=200, within_s=WITHIN_S,
                                   monitor_features=monitor_features and not scores,
                                   challengers=challengers and not scores, monitor_scores=scores)
    agent, = agents
    async with agent.test_context() as running:
        running.sent_offset = first_offset
        for value in values:
            await running.put(key=value.transaction_id.encode(), value=value)
    return topics.drift_alerts.sent


def test_an_amount_shift_becomes_one_alert_with_its_provenance():
    watch = make_watch()
    rng = random.Random(1)
    alerts = []
    for i in range(6000):
        amount = rng.lognormvariate(3.0, 1.0) * (1 if i < 3000 else 4)
        alerts += watch.observe_transaction(_tx(i, amount), partition=2, offset=i)
    assert len(alerts) == 1
    a = alerts[0]
    assert a.stream == "feature:Amount" and a.partition == 2 and a.offset == a.position - 1
    assert 3000 < a.position < 3500 and a.transaction_id == f"t-{a.offset}"
    assert a.mean_after > a.mean_before and a.mitigation == "none" and "log1p" in a.detector
    assert a.description.startswith("the typical Amount rose from ")
    assert a.description.endswith(f" over the last {a.width:,} transactions on partition 2")


def test_error_drift_alerts_and_resets_the_partition_learner():
    live = Learner()
    live.learned = 500
    watch = make_watch(mitigation="reset", learners=FakeScorer({0: live}))
    alerts = [a for s in _error_stream() for a in watch.observe_score(s)]
    errors = [a for a in alerts if a.stream == "error"]
    assert errors and 4000 < errors[0].position < 5000
    assert errors[0].mitigation == "reset" and errors[0].model_version == "m-7"
    assert errors[0].description.startswith("the error rate (wrong decisions) rose from ")
    assert live.learned == 0
    # the reset learner is a new model: its score and error detectors started over at the alarm
    assert watch.score_monitors.get(0).count("error") == 8000 - errors[0].position


def test_without_errors_the_scores_error_stream_is_left_out():
    """Central learning: the error stream is the learner's, the scores' monitors watch the scores only."""
    watch = make_watch(errors=False)
    alerts = [a for s in _error_stream() for a in watch.observe_score(s)]
    assert [a for a in alerts if a.stream == "error"] == []
    monitor = watch.score_monitors.get(0)
    assert monitor.count("error") == 0 and monitor.count("score") == 8000


def test_a_v_column_spread_change_alerts_on_its_feature_stream():
    watch = make_watch(features=["Amount", "V1", "V2", "V3"], transform="log1p_abs")
    rng = random.Random(2)
    alerts = []
    for i in range(6000):
        v1 = rng.gauss(0, 2.0) if i < 3000 else rng.gauss(0, 0.6)  # another column's values from row 3000
        alerts += watch.observe_transaction(_tx(i, rng.lognormvariate(3.0, 1.0), V1=v1, V2=rng.gauss(0, 1),
                                                V3=rng.gauss(0, 1)), partition=0, offset=i)
    assert [a.stream for a in alerts] == ["feature:V1"]
    assert 3000 < alerts[0].position < 3300 and alerts[0].mean_after < alerts[0].mean_before
    assert "log1p_abs" in alerts[0].detector


def test_falling_scores_of_a_learning_model_raise_no_alert():
    watch = make_watch()
    alerts = []
    for i in range(6000):
        s = _score(i, False, None)
        s.fraud_probability = 0.5 * 0.999 ** i  # a cold model learning the base rate
        alerts += watch.observe_score(s)
    assert alerts == [] and watch.score_monitors.get(0).suppressed >= 1


def test_scores_of_a_model_that_has_not_settled_wait():
    """A model's score and error values reach their detectors once it has learned ``settle`` events
    (``events_learned`` of the score)."""
    live = Learner()
    watch = make_watch(mitigation="reset", learners=FakeScorer({0: live}),
                       new_score_monitor=lambda: new_score_monitor(settle=3000))
    alerts = [a for s in _error_stream() for a in watch.observe_score(s)]  # events_learned = i; change at 4000
    errors = [a for a in alerts if a.stream == "error"]
    assert errors and 4000 < errors[0].position < 5000 and errors[0].mitigation == "reset"
    assert watch.score_monitors.get(0).waiting == 2 * 3000
    young = make_watch(new_score_monitor=lambda: new_score_monitor(settle=10_000))
    assert [a for s in _error_stream() for a in young.observe_score(s)] == []
    assert young.score_monitors.get(0).waiting == 2 * 8000


def test_challenger_started_at_the_warning_is_promoted():
    live = Learner()
    scorer = FakeScorer({0: live})
    watch = make_watch(mitigation="challenger", warning_delta=0.5, min_events=1, learners=scorer)
    promoted = None
    for s in _error_stream(seed=3):
        # the labelled transaction reaches the drift agent too (feeding a running challenger)
        tx = _tx(s.offset, 10.0, s.label)
        watch.observe_transaction(tx, partition=0, offset=s.offset)
        watch.teach_challenger(tx, partition=0)
        for a in watch.observe_score(s):
            if a.stream == "error" and promoted is None:
                promoted = a.mitigation
    assert promoted in ("challenger", "reset")  # reset when the warning came with the drift
    if promoted == "challenger":
        assert scorer.replaced[0] is not live and scorer.replaced[0].learned >= 1


def test_without_scoring_learners_mitigation_is_unavailable():
    watch = make_watch(mitigation="reset", learners=None)
    alerts = [a for s in _error_stream() for a in watch.observe_score(s) if a.stream == "error"]
    assert alerts and alerts[0].mitigation == "unavailable"


def test_score_stream_alerts_never_mitigate():
    live = Learner()
    live.learned = 9
    watch = make_watch(mitigation="reset", learners=FakeScorer({0: live}))
    alerts = []
    for i in range(4000):
        s = _score(i, False, None)
        s.fraud_probability = 0.1 if i < 2000 else 0.6
        alerts += watch.observe_score(s)
    assert [a.stream for a in alerts] == ["score"] and alerts[0].mitigation == "none" and live.learned == 9


class Alerting:
    """A watch whose every batch of scores gives ``alerts``."""

    def __init__(self, alerts):
        self.alerts = alerts

    async def observe_scores(self, events):
        return self.alerts

    def scores_done(self, partitions):
        self.done = partitions


@pytest.mark.asyncio
async def test_publish_counts_alerts():
    detection = Detection("score", "drift", 10, 0.1, 0.5, 4, "ADWIN(delta=0.002,clock=32)")
    before = metrics.DRIFT_ALERTS.labels(stream="score")._value.get()
    sent = await run_agents(Alerting([alert(detection, "none", event_time=1.0, transaction_id="t-9", partition=0,
                                            offset=9)]), [_score(9, False, None)], scores=True)
    assert sent[0][0] == b"t-9" and sent[0][1].position == 10
    assert sent[0][1].description == "the fraud score's mean rose from 0.1 to 0.5 over the last 4 scores on partition 0"
    assert metrics.DRIFT_ALERTS.labels(stream="score")._value.get() == before + 1


@pytest.mark.asyncio
async def test_the_publisher_of_the_central_learners_alerts_confirms_and_counts_them(monkeypatch):
    from app.drift.learner_errors import CENTRAL

    topic = SentRecords("drift-alerts")
    detection = Detection("error", "drift", 700, 0.02, 0.2, 96, "ADWIN(delta=0.002,clock=32)")
    before = metrics.DRIFT_ALERTS.labels(stream="error")._value.get()
    await drift_agents.publisher(topic)([alert(detection, "none", event_time=1.0, transaction_id="t-699",
                                               partition=CENTRAL, offset=699)])
    assert [(key, value.offset) for key, value in topic.sent] == [(b"t-699", 699)]
    assert metrics.DRIFT_ALERTS.labels(stream="error")._value.get() == before + 1
    refused = SentRecords("drift-alerts", refuse=RuntimeError("too large"))
    exits = []
    monkeypatch.setattr(outputs, "_exit", exits.append)
    with pytest.raises(RuntimeError):
        await drift_agents.publisher(refused)([alert(detection, "none", event_time=1.0, transaction_id="t-1",
                                                     partition=CENTRAL, offset=1)])
    assert exits == [outputs.SEND_FAILED_EXIT_CODE]  # the worker stops
    assert metrics.DRIFT_ALERTS.labels(stream="error")._value.get() == before + 1  # a refused one is not counted


# --- checkpoints ------------------------------------------------------------------------------------
def _amount_shift(n: int = 6000, at: int = 3000, seed: int = 5) -> list[Transaction]:
    rng = random.Random(seed)
    return [_tx(i, rng.lognormvariate(3.0 if i < at else 4.5, 1.0)) for i in range(n)]


def everywhere(reader) -> dict:
    """``reader`` as the read-back of every monitor."""
    return {"features": reader, "scores": reader, "challenger": reader}


@pytest.mark.asyncio
@pytest.mark.parametrize("resume", [-700, 0, 400], ids=["redelivered", "at-the-checkpoint", "committed-after-it"])
async def test_feature_monitors_are_checkpointed_and_a_restart_alerts_as_if_uninterrupted(resume):
    """Checkpoints every 1,000 values; a crash after 2,500; the consumer resumes ``resume`` values
    from the last checkpoint: before it (skipped), right after it, or past it (read back and fed)."""
    txs = _amount_shift()
    reads = []

    async def read_back(partition, start, end):
        reads.append((partition, start, end))
        for tx in txs[start:end]:  # offset i holds txs[i]
            yield tx

    table = ChangelogTable()
    watch = make_watch(table, checkpoint_every=1000, read_back=everywhere(read_back))
    pure = new_feature_monitor()
    expected = [d.position for d in (pure.update("feature:Amount", tx.Amount) for tx in txs) if d and d.kind == "drift"]
    assert expected and expected[0] > 3000

    sent = await run_agents(watch, txs[:2500])
    assert [(p, k) for p, k, _ in table.written] == [(0, b"features:0")] * 2  # at 1,000 and 2,000 values
    assert [open_envelope(blob)[0] for _, _, blob in table.written] == [999, 1999]  # the last offsets taken in
    last = restored(new_feature_monitor(), table.written[-1][2]).updates
    assert last == 2000 and watch.feature_monitors.checkpointed_at[0] == 2000
    table.data[b"features:0"] = table.written[-1][2]  # what the changelog gives back

    # a crash: a new worker's monitors; the consumer resumes at the committed offset
    watch = make_watch(table, checkpoint_every=1000, read_back=everywhere(read_back))
    start = last + resume
    sent += await run_agents(watch, txs[start:], first_offset=start)
    assert [a.position for _, a in sent] == expected  # not a fresh window that misses or delays the change
    assert watch.feature_monitors.get(0).updates == len(txs)  # every value once
    assert reads == ([(0, last, start)] if resume > 0 else [])


@pytest.mark.asyncio
async def test_score_monitors_catch_up_on_the_scores_committed_after_their_checkpoint():
    rng = random.Random(3)
    stream = [_score(i, rng.random() < 0.5, rng.random() < 0.5) for i in range(400)]

    async def read_back(partition, start, end):
        for score in stream[start:end]:
            yield score

    table = ChangelogTable()
    watch = make_watch(table, checkpoint_every=100, read_back=everywhere(read_back))
    await run_agents(watch, stream[:250], scores=True)
    position, blob = open_envelope(table.written[-1][2])
    table.data[b"scores:0"] = table.written[-1][2]
    watch = make_watch(table, checkpoint_every=100, read_back=everywhere(read_back))
    await run_agents(watch, stream[position + 31:], position + 31, scores=True)  # 30 committed after the checkpoint
    uninterrupted = new_score_monitor()
    for s in stream:
        for name, value in score_values(s):
            uninterrupted.update(name, value)
    resumed = watch.score_monitors.get(0)
    assert resumed.updates == uninterrupted.updates == 400 + sum(s.label is not None for s in stream)
    assert [resumed.count(name) for name in ("score", "error")] == [uninterrupted.count(name)
                                                                    for name in ("score", "error")]


def test_a_checkpoint_of_other_adwin_settings_gives_an_empty_monitor(caplog):
    old = new_feature_monitor()
    for tx in _amount_shift(500):
        old.update("feature:Amount", tx.Amount)
    table = ChangelogTable()
    table.data[b"features:0"] = old.to_checkpoint()  # (stored before positions were kept: still read)
    watch = make_watch(table, delta=0.01)
    with caplog.at_level("ERROR"):
        monitor = watch.feature_monitors.get(0)
    assert monitor.updates == 0 and monitor.delta == 0.01
    assert "partition 0: the features drift monitor checkpoint is unusable" in caplog.text
    assert "delta=0.002" in caplog.text


async def revoke(watch, revoked: set) -> None:
    """Faust's revocation of the topic partitions ``revoked``, through the worker's hook."""
    app = agent_app("test-drift-revoked")
    lifecycle.register(app, [watch])
    await app.on_partitions_revoked.send(revoked)


@pytest.mark.asyncio
async def test_revoked_partitions_monitors_are_checkpointed_and_forgotten():
    table = ChangelogTable()
    watch = make_watch(table)
    watch.observe_transaction(_tx(1, 20.0), partition=0, offset=1)
    watch.observe_score(_score(1, False, 0, partition=1))
    watch.feature_monitors.get(2)  # nothing seen since it was opened: nothing to write
    await revoke(watch, {TP(TRANSACTIONS, 0), TP(TRANSACTIONS, 2), TP(SCORES, 1)})
    assert sorted((p, k) for p, k, _ in table.written) == [(0, b"features:0"), (1, b"scores:1")]
    monitor = restored(new_feature_monitor(), table.written[0][2] if table.written[0][0] == 0 else table.written[1][2])
    assert monitor.count("feature:Amount") == 1
    assert watch.feature_monitors.partitions() == [] and watch.score_monitors.partitions() == []


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


@pytest.mark.asyncio
@pytest.mark.parametrize("resume", [-70, 0, 30], ids=["redelivered", "at-the-checkpoint", "committed-after-it"])
async def test_a_running_challenger_is_checkpointed_and_a_restart_teaches_it_every_label_once(resume):
    """A challenger started at a warning, checkpointed every 100 changes; a crash after 250
    transactions; the consumer resumes ``resume`` transactions from the last checkpoint's position:
    before it (skipped), right after it, or past it (read back and learned)."""
    txs = [_tx(i, float(i), label=None if i % 5 == 0 else int(i % 3 == 0)) for i in range(600)]  # 1 in 5 unlabelled
    labelled = [tx for tx in txs if tx.Class is not None]
    reads = []

    async def read_back(partition, start, end):
        reads.append((partition, start, end))
        for tx in txs[start:end]:
            yield tx

    def challenger_watch(table):  # the transactions agent runs for the challenger alone: no features
        return make_watch(table, features=[], mitigation="challenger", min_events=1, challenger_checkpoint_every=100,
                          read_back=everywhere(read_back))

    table = ChangelogTable()
    watch = challenger_watch(table)
    assert watch.policy.on_warning(0, Recording())  # started before the first transaction
    await run_agents(watch, txs[:250], monitor_features=False, challengers=True)
    written = [v for _, k, v in table.written if k == b"challenger:0"]
    assert written  # at the end of a batch, once 100 changes were made
    position, blob = open_envelope(written[-1])
    assert 70 <= position <= 250 - 1 - 30  # so that each resume lies within what was consumed
    assert ChallengerSlot.from_checkpoint(blob).events == sum(tx.Class is not None for tx in txs[:position + 1])
    table.data[b"challenger:0"] = written[-1]  # what the changelog gives back

    # a crash: a new worker's slots and policy; the consumer resumes at the committed offset
    watch = challenger_watch(table)
    start = position + 1 + resume
    await run_agents(watch, txs[start:], first_offset=start, monitor_features=False, challengers=True)
    amounts = [tx.Amount for tx in labelled]
    slot = watch.challengers.get(0)
    assert slot.learner.amounts == amounts and slot.events == len(amounts)  # each label once, in order
    assert reads == ([(0, position + 1, start)] if resume > 0 else [])
    outcome = watch.policy.on_drift(0, Recording())
    assert outcome.action == "challenger" and outcome.learner.amounts == amounts


@pytest.mark.asyncio
async def test_revoked_partitions_challengers_are_checkpointed_and_forgotten():
    table = ChangelogTable()
    watch = make_watch(table, mitigation="challenger", min_events=1)
    watch.policy.on_warning(0, Recording())
    watch.teach_challenger(_tx(1, 20.0, label=1), partition=0)
    await revoke(watch, {TP(TRANSACTIONS, 0)})
    blobs = [v for _, k, v in table.written if k == b"challenger:0"]
    assert len(blobs) == 1 and ChallengerSlot.from_checkpoint(open_envelope(blobs[0])[1]).learner.amounts == [20.0]
    assert watch.challengers.partitions() == []


def test_a_challenger_start_and_its_promotion_are_checkpointed_at_once():
    """Both come from the score stream, which a restored slot's catch-up does not replay."""
    table = ChangelogTable()
    scorer = FakeScorer({0: Recording()})
    watch = make_watch(table, mitigation="challenger", min_events=1, learners=scorer)

    def slots_written():
        return [ChallengerSlot.from_checkpoint(open_envelope(v)[1])
                for _, k, v in table.written if k == b"challenger:0"]

    watch.on_warning(0, Detection("error", "warning", 40, 0.05, 0.2, 64, "ADWIN(delta=0.1,clock=32)"))
    started, = slots_written()
    assert started.learner is not None and started.events == 0
    watch.teach_challenger(_tx(1, 5.0, label=1), partition=0)
    action = watch.mitigate(0, Detection("error", "drift", 90, 0.05, 0.4, 128, "ADWIN(delta=0.002,clock=32)"))
    assert action == "challenger" and scorer.replaced[0].amounts == [5.0]
    assert [slot.learner is None for slot in slots_written()] == [False, True]  # the promotion, written at once
    # a crash now: the next worker's slot has no challenger to promote again
    table.data[b"challenger:0"] = table.written[-1][2]
    watch = make_watch(table, mitigation="challenger", min_events=1, learners=FakeScorer({0: Recording()}))
    assert watch.challengers.get(0).learner is None


@pytest.mark.asyncio
async def test_the_scores_the_scoring_agent_wrote_alert_as_the_agent_over_the_scores_topic():
    """``scores_step`` (the drift work a scoring worker does on the scores it wrote, with their
    offsets on the scores topic) gives the alerts, checkpoint positions and counts of the agent that
    reads the same scores from the topic."""
    scores = list(_error_stream())
    over_topic = make_watch()
    from_topic = await run_agents(over_topic, scores, scores=True)

    app = agent_app("test-drift-scores-step")
    topics = agent_topics(app)
    in_process = make_watch()
    step = drift_agents.scores_step(topics, in_process)
    before = metrics.AGENT_EVENTS.labels(agent="drift-scores")._value.get()
    for first in range(0, len(scores), 200):  # the batches of the agent above
        await step([(score.to_representation(), first + i) for i, score in enumerate(scores[first:first + 200])])
    got = topics.drift_alerts.sent
    assert len(from_topic) >= 1 and [a.stream for _, a in from_topic] == ["error"] * len(from_topic)
    assert [(k, a.position, a.offset, a.description) for k, a in got] == \
        [(k, a.position, a.offset, a.description) for k, a in from_topic]
    assert in_process.score_monitors.positions == over_topic.score_monitors.positions == {0: len(scores) - 1}
    assert metrics.AGENT_EVENTS.labels(agent="drift-scores")._value.get() == before + len(scores)
