"""The scoring agent's per-event logic, with in-memory tables: predict then learn, pending labels,
checkpoints and restores, the offsets that keep a restored model from learning twice. The models
run in this process (``LocalHost``), and in a model process for the parity test."""
from __future__ import annotations

import asyncio
import functools

import pytest

import settings
from app import configured
from app.data.synthetic import generate
from app.learning import OnlineLearner, build_model
from app.learning.model_host import LocalHost, ProcessHost
from app.scoring import Item, Scorer, ScoringFailed
from app.state.checkpointed import open_envelope
from app.records import FEATURE_NAMES, Transaction
from app.replay import to_transaction
from tests.fakes import ChangelogTable


async def local_host():
    return LocalHost()


def make_scorer(host=local_host, checkpoints=None, pending=None, **kwargs) -> Scorer:
    """A scorer with the default model at 3 trees, its models in this process, in-memory tables."""
    kwargs.setdefault("model_factory", functools.partial(build_model, **{**configured.model_params(settings), "trees": 3}))
    return Scorer(host, checkpoints or ChangelogTable(), pending or ChangelogTable(), record=Transaction, **kwargs)


@pytest.fixture
def scorer():
    return make_scorer()


def transactions(n: int, seed: int = 21, with_label: bool = True) -> list[Transaction]:
    return [Transaction(**to_transaction(row, f"tx-{i}", 1.7e9, with_label)) for i, row in enumerate(generate(n, seed=seed))]


def plain_loop(txs) -> list[float]:
    learner = OnlineLearner(functools.partial(build_model, **{**configured.model_params(settings), "trees": 3}))
    out = []
    for tx in txs:
        x = {name: getattr(tx, name) for name in FEATURE_NAMES}
        out.append(learner.predict_proba(x))
        learner.learn(x, tx.Class)
    return out


async def score_items(scorer, items):
    """The agent's path for ``items``: submitted to the model host, then the scored chunks."""
    async for chunk in scorer.scored(await scorer.submit(items)):
        yield chunk


def score(scorer, txs, first_offset=0, partition=0) -> list[dict]:
    """Score ``txs`` (offsets from ``first_offset``) through the agent's path; the score dicts."""
    items = [Item(tx, tx.transaction_id.encode(), partition, first_offset + i) for i, tx in enumerate(txs)]

    async def run():
        return [result async for chunk in score_items(scorer, items) for _, result in chunk]
    return asyncio.run(run())


def learn_label(scorer, key, label, partition, offset) -> str:
    """Plan and learn one late label; its outcome."""
    async def run():
        outcome, op = await scorer.plan_label(key, label, partition, offset)
        assert await scorer.learn([(partition, op, None)] if op else []) == []
        return outcome
    return asyncio.run(run())


def local_model(scorer, partition=0):
    return scorer._host.learners.learners[partition]


def checkpoint(scorer, partition=0) -> None:
    asyncio.run(scorer.states.checkpoint(partition))


def test_in_event_labels_predict_then_learn_like_a_plain_loop(scorer):
    txs = transactions(500)
    scores = score(scorer, txs)
    assert [s["fraud_probability"] for s in scores] == plain_loop(txs)
    assert [s["events_learned"] for s in scores] == list(range(500))
    first = scores[0]
    assert first["transaction_id"] == "tx-0" and first["event_time"] == txs[0].event_time
    assert first["model_version"] == "arf3+lr-g0" and first["label"] == txs[0].Class
    assert first["decision"] == (first["fraud_probability"] >= scorer.threshold)
    assert scorer.partitions[0].evaluator.count == 500


@pytest.mark.parametrize("chunk", [1, 7, 25])
def test_a_model_process_scores_exactly_like_the_plain_loop(chunk):
    txs = transactions(300)
    scorer = make_scorer(host=ProcessHost.start, model_chunk=chunk)

    async def run():
        try:
            items = [Item(tx, tx.transaction_id.encode(), 0, i) for i, tx in enumerate(txs)]
            chunks = [[s for _, s in part] async for part in score_items(scorer, items)]
            await scorer.states.checkpoint(0)
            return chunks
        finally:
            await (await scorer.host()).close()

    chunks = asyncio.run(run())
    assert [len(c) for c in chunks] == [len(txs[i:i + chunk]) for i in range(0, len(txs), chunk)]
    scores = [s for c in chunks for s in c]
    assert [s["fraud_probability"] for s in scores] == plain_loop(txs)
    assert [s["events_learned"] for s in scores] == list(range(300))
    positions, blob = open_envelope(scorer.states.table.data[b"0"])
    assert positions == {"transactions": 299}
    assert OnlineLearner.from_checkpoint(blob).events_learned == 300


def test_a_failing_model_operation_gives_that_transaction_an_error_and_scores_the_others(scorer):
    txs = transactions(3)
    txs[1].V1 = "not a number"  # the model raises on it
    results = score(scorer, txs)
    assert isinstance(results[1], ScoringFailed) and "str" in str(results[1])
    assert [r["transaction_id"] for r in (results[0], results[2])] == ["tx-0", "tx-2"]
    assert scorer.partitions[0].learner.events_learned == local_model(scorer).events_learned == 2


def test_late_labels_learn_with_the_features_the_transaction_was_scored_on(scorer):
    labelled = transactions(300)
    unlabelled = transactions(300, with_label=False)
    score(scorer, unlabelled)
    state = scorer.partitions[0]
    assert len(state.pending) == 300 and state.learner.events_learned == 0
    outcomes = [learn_label(scorer, tx.transaction_id.encode(), tx.Class, 0, i) for i, tx in enumerate(labelled)]
    assert outcomes == ["learned"] * 300
    assert state.learner.events_learned == 300 and len(state.pending) == 0
    assert learn_label(scorer, b"tx-0", 0, 0, 300) == "unknown"  # its label came already
    assert learn_label(scorer, b"nobody", 0, 0, 301) == "unknown"
    # the same learning as in-event labels, in the same order
    expected = OnlineLearner(functools.partial(build_model, **{**configured.model_params(settings), "trees": 3}))
    for tx in labelled:
        expected.learn({name: getattr(tx, name) for name in FEATURE_NAMES}, tx.Class)
    probe = {name: 0.5 for name in FEATURE_NAMES}
    assert local_model(scorer).predict_proba(probe) == expected.predict_proba(probe)
    assert local_model(scorer).events_learned == 300


def test_expired_transactions_count_as_expired():
    scorer = make_scorer(pending_max=10)
    score(scorer, transactions(30, with_label=False))
    scorer.after_batch({0})
    assert len(scorer.partitions[0].pending) == 10
    assert learn_label(scorer, b"tx-0", 0, 0, 0) == "expired"
    assert learn_label(scorer, b"tx-29", 0, 0, 1) == "learned"
    assert (0, b"tx-0", None) in scorer.pending_table.written  # the expired features are deleted


def restart(scorer) -> Scorer:
    """What a restart leaves: the tables, not the learners (nor the model host's models)."""
    return make_scorer(checkpoints=scorer.states.table, pending=scorer.pending_table)


def test_a_restored_checkpoint_scores_again_but_does_not_learn_twice(scorer):
    txs = transactions(400)
    score(scorer, txs[:300])
    checkpoint(scorer)
    blob = scorer.states.table.data[b"0"]
    assert scorer.states.table.written == [(0, b"0", blob)]
    expected = [s["fraud_probability"] for s in score(scorer, txs[300:], first_offset=300)]

    scorer = restart(scorer)  # the learner comes back from the table
    replayed = score(scorer, txs[250:], first_offset=250)
    assert replayed[0]["events_learned"] == 300  # the checkpoint's model, not a fresh one
    assert scorer.partitions[0].learner.events_learned == local_model(scorer).events_learned == 400  # 250..299 not learned again
    assert [s["fraud_probability"] for s in replayed[50:]] == expected


def test_a_restored_scorer_catches_up_on_what_was_committed_after_its_checkpoint(scorer):
    """The consumer resumes past the checkpoint's position: the transactions between are read
    back, scored again and learned first, once; so are the labels between."""
    txs = transactions(200)
    score(scorer, txs[:100])
    checkpoint(scorer)
    reads = []

    async def read_back(source, partition, start, end):
        reads.append((source, partition, start, end))
        for offset in range(start, end):
            tx = txs[offset]
            yield offset, (tx.transaction_id.encode(), tx.asdict())

    scorer = make_scorer(checkpoints=scorer.states.table, pending=scorer.pending_table, read_back=read_back,
                         catch_up_chunk=16)

    class Event:  # what the agent hands over: a stream event
        def __init__(self, offset):
            self.value, self.key = txs[offset], txs[offset].transaction_id.encode()
            self.message = type("Message", (), {"partition": 0, "offset": offset, "topic": "transactions"})

    lists = []

    async def resume():
        scores = []
        async for items in scorer.item_batches([Event(150), Event(151)]):  # as the agent: list by list
            lists.append([(item.offset, item.event is not None) for item in items])
            scores += [s async for chunk in scorer.scored(await scorer.submit(items)) for _, s in chunk]
        return scores

    scores = asyncio.run(resume())
    assert reads == [("transactions", 0, 100, 150)]
    # the 50 read back come 16 at a time, never all at once; the stream events alone in the last list
    assert [len(items) for items in lists] == [16, 16, 16, 2, 2]
    assert [offset for items in lists for offset, _ in items] == list(range(100, 152))
    assert [from_stream for items in lists for _, from_stream in items] == [False] * 50 + [True] * 2
    assert [s["offset"] for s in scores] == list(range(100, 152))
    assert scorer.partitions[0].learner.events_learned == 152
    assert [s["fraud_probability"] for s in scores] == plain_loop(txs[:152])[100:]


def test_a_worker_that_crashed_before_its_first_checkpoint_loses_nothing():
    """No checkpoint yet, but the consumer resumes at offset 150 (a worker consumed and committed
    150 transactions, then crashed): the new owner reads all 150 back and learns them first, so
    its model is the plain loop's."""
    txs = transactions(200)
    reads = []

    async def read_back(source, partition, start, end):
        reads.append((source, partition, start, end))
        for offset in range(start, end):
            yield offset, (txs[offset].transaction_id.encode(), txs[offset].asdict())

    scorer = make_scorer(read_back=read_back)

    class Event:
        def __init__(self, offset):
            self.value, self.key = txs[offset], txs[offset].transaction_id.encode()
            self.message = type("Message", (), {"partition": 0, "offset": offset, "topic": "transactions"})

    async def resume():
        scores = []
        async for items in scorer.item_batches([Event(150)]):
            scores += [s async for chunk in scorer.scored(await scorer.submit(items)) for _, s in chunk]
        return scores

    scores = asyncio.run(resume())
    assert reads == [("transactions", 0, 0, 150)]
    assert scorer.partitions[0].learner.events_learned == 151
    assert [s["fraud_probability"] for s in scores] == plain_loop(txs[:151])


def test_learned_labels_keep_their_features_until_the_next_checkpoint(scorer):
    score(scorer, transactions(50, with_label=False))
    learn_label(scorer, b"tx-3", 1, 0, 0)
    assert b"tx-3" in scorer.pending_table.data  # a crash now: the label comes again and finds them
    checkpoint(scorer)
    assert b"tx-3" not in scorer.pending_table.data
    scorer = restart(scorer)
    assert learn_label(scorer, b"tx-3", 1, 0, 0) == "duplicate"  # its offset is in the checkpoint
    assert len(scorer.partitions[0].pending) == 49  # rebuilt from the table


def test_revoked_partitions_are_checkpointed_and_forgotten(scorer):
    score(scorer, transactions(20), partition=0)
    score(scorer, transactions(20), partition=1)
    asyncio.run(scorer.revoked({"transactions": {1}, "labels": {0}}))
    assert sorted(scorer.partitions) == [0]
    assert [(p, k) for p, k, _ in scorer.states.table.written] == [(1, b"1")]
    assert 1 not in scorer._host.learners.learners  # dropped from the model host too


def test_replace_and_reset_the_live_learner(scorer):
    txs = transactions(100)
    score(scorer, txs)

    async def reset_and_replace():
        scorer.learners[0].reset()
        after_reset = [s async for s in score_items(scorer, [Item(txs[0], b"tx-0", 0, 100)])][0][0][1]
        reset_model = local_model(scorer)
        assert reset_model.events_learned == 1 and reset_model.version == "arf3+lr-g1"
        challenger = OnlineLearner(functools.partial(build_model, kind="lr"), generation=5)
        scorer.replace_learner(0, challenger)
        return after_reset, challenger

    after_reset, challenger = asyncio.run(reset_and_replace())
    assert after_reset["model_version"] == "arf3+lr-g1" and after_reset["events_learned"] == 0
    replayed = score(scorer, [txs[1]], first_offset=50)[0]  # an offset the old learner had learned
    assert replayed["model_version"] == "lr-g5" and replayed["events_learned"] == 0
    assert local_model(scorer).version == "lr-g5" and local_model(scorer).events_learned == 0


@pytest.mark.parametrize("enabled", [True, False])
def test_this_process_is_frozen_out_of_the_collector_when_a_learner_opens_and_at_each_checkpoint(monkeypatch, enabled):
    from app import gc_tuning

    freezes = []
    monkeypatch.setattr(gc_tuning, "freeze", lambda: freezes.append(1) or 0)
    scorer = make_scorer(gc_freeze=enabled)
    score(scorer, transactions(10))
    assert len(freezes) == (1 if enabled else 0)  # the new learner, once
    checkpoint(scorer)
    assert len(freezes) == (2 if enabled else 0)


def test_labels_committed_after_the_checkpoint_are_read_back_and_learned_list_by_list(scorer):
    """A restored scorer's label catch-up comes in lists of ``catch_up_chunk`` and the label agent
    learns each before reading the next, then the label that brought it."""
    import types

    from app.agents.scoring import learn_label_batch
    from tests.fakes import SentDeadLetters

    txs = transactions(60, with_label=False)
    score(scorer, txs)
    checkpoint(scorer)  # the 60 pending; no label learned yet
    labels = [(f"tx-{i}", i % 2) for i in range(41)]  # labels topic offsets 0..40

    async def read_back(source, partition, start, end):
        assert source == "labels"
        for offset in range(start, end):
            yield offset, (labels[offset][0].encode(), {"transaction_id": labels[offset][0], "label": labels[offset][1]})

    restored = make_scorer(checkpoints=scorer.states.table, pending=scorer.pending_table, read_back=read_back,
                           catch_up_chunk=16)
    asyncio.run(restored.states.get(0))
    restored.states.advance(0, "labels", -1)  # the checkpoint was written before label offset 0
    sizes = []
    learn_soon = restored.learn_soon  # what every list's learning goes through

    async def counting_learn_soon(planned):
        sizes.append(len(planned))
        return await learn_soon(planned)

    restored.learn_soon = counting_learn_soon
    tx_id, label = labels[40]
    event = types.SimpleNamespace(
        value=types.SimpleNamespace(transaction_id=tx_id, label=label, event_time=txs[40].event_time),
        message=types.SimpleNamespace(partition=0, offset=40, topic="labels"))
    topics = types.SimpleNamespace(dead_letters=SentDeadLetters(),
                                   labels=types.SimpleNamespace(get_topic_name=lambda: "labels"))
    asyncio.run(learn_label_batch(restored, topics, [event], label_wait_max_s=0.1))
    assert sizes == [16, 16, 8, 1]  # the 40 read back, 16 at a time, then the batch's own label
    assert restored.partitions[0].learner.learned_since_checkpoint == 41
    assert topics.dead_letters.sent == []


def test_batches_of_labels_in_flight_are_acknowledged_in_order_once_learned():
    """A batch of labels learned faster than the one before it waits for it to be acknowledged; a
    batch whose learning failed is not acknowledged, nor is any after it."""
    import types

    from app.agents.scoring import _acked

    acked = []

    async def ack(event):
        acked.append(event)

    stream = types.SimpleNamespace(ack=ack)

    async def run():
        first_learned, second_learned = asyncio.Event(), asyncio.Event()
        first = asyncio.ensure_future(_acked(stream, ["l0", "l1"], first_learned.wait, after=None))
        second = asyncio.ensure_future(_acked(stream, ["l2"], second_learned.wait, after=first))
        second_learned.set()
        await asyncio.sleep(0.01)
        assert acked == []  # learned, but the batch before is not
        first_learned.set()
        await second
        assert acked == ["l0", "l1", "l2"]

        async def fails():
            raise RuntimeError("the model host died")

        async def learned():
            return None

        failed = asyncio.ensure_future(_acked(stream, ["l3"], fails, after=None))
        after = asyncio.ensure_future(_acked(stream, ["l4"], learned, after=failed))
        results = await asyncio.gather(failed, after, return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)
        assert acked == ["l0", "l1", "l2"]

    asyncio.run(run())
