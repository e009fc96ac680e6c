"""The worker's health and model pages (:mod:`app.http`) over HTTP, on an in-memory Faust app whose
assignment, rebalancing and recovery flags the tests set as Faust would."""
from __future__ import annotations

import asyncio
import time
import types
import uuid

import faust
import pytest
from faust.assignor.client_assignment import ClientAssignment

from app import http, metrics
from app.drift.detectors import feature_monitor, score_monitor
from app.drift.watch import DriftWatch
from app.learning.central import LearnerBook
from app.learning.central_learner import CentralLearner
from app.learning.examples import Example, encode
from app.learning.model_host import LocalHost, ProcessHost
from app.learning.pipeline import model_factory
from app.records import Score, Transaction
from app.scoring import Item, Scorer
from app.scoring.replica import Replica
from app.service import Service
from app.state.signing import Signer
from tests.fakes import ChangelogTable, SentRecords, assign, web_client

RETRY_AFTER_S = 7


async def local_host():
    return LocalHost()


def make_scorer(host=local_host) -> Scorer:
    return Scorer(host, ChangelogTable(), ChangelogTable(), model_factory=model_factory(kind="lr"),
                  record=Transaction, checkpoint_every=1_000_000)


def make_app() -> faust.App:
    return faust.App(f"http-{uuid.uuid4().hex[:8]}", broker="memory://", store="memory://")


def make_service(app, scorer=None, drift=None, learner=None) -> Service:
    topics = types.SimpleNamespace(transactions=SentRecords("transactions"))
    service = Service(topics, scorer=scorer, drift=drift, learner=learner)
    http.register(app, service, ping_timeout_s=0.5, retry_after_s=RETRY_AFTER_S)
    return service


def transaction(i: int, label: int | None) -> Transaction:
    return Transaction(transaction_id=f"tx-{i}", event_time=1.7e9 + i, Amount=float(i % 7), Class=label,
                       **{f"V{k}": float((i * k) % 5) for k in range(1, 29)})


async def learn(scorer: Scorer, partition: int, txs: list[Transaction], first_offset: int = 0) -> None:
    items = [Item(tx, tx.transaction_id.encode(), partition, first_offset + i) for i, tx in enumerate(txs)]
    async for _ in scorer.scored(await scorer.submit(items)):
        pass


@pytest.mark.asyncio
async def test_readyz_says_what_is_missing_until_assigned_recovered_and_models_open():
    app = make_app()
    scorer = make_scorer()
    make_service(app, scorer)
    async with web_client(app) as web:
        app.rebalancing = True
        response = await web.get("/readyz")
        assert response.status == 503
        assert response.headers["Retry-After"] == str(RETRY_AFTER_S)
        assert (await response.json())["missing"] == [
            "a rebalance is under way", "the tables are not recovered yet",
            "no partition of transactions is assigned to this worker"]

        assign(app, [0, 2])
        response = await web.get("/readyz")
        assert response.status == 503
        assert (await response.json()) == {"ready": False,
                                           "missing": ["the models of partitions [0, 2] are not open yet"]}

        await scorer.states.get(0)
        assert (await (await web.get("/readyz")).json())["missing"] == [
            "the models of partitions [2] are not open yet"]
        await scorer.states.get(2)
        response = await web.get("/readyz")
        assert response.status == 200 and await response.json() == {"ready": True}

        app.tables.on_rebalance_start()  # what a new rebalance does first
        app.rebalancing = True
        response = await web.get("/readyz")
        assert response.status == 503
        assert (await response.json())["missing"] == ["a rebalance is under way", "the tables are not recovered yet"]


@pytest.mark.asyncio
async def test_readyz_of_a_worker_without_models_needs_no_model():
    app = make_app()
    make_service(app)
    async with web_client(app) as web:
        assign(app, [1])
        response = await web.get("/readyz")
        assert response.status == 200
        assert (await web.get("/model")).status == 404  # no scoring agent here
        assert (await web.get("/drift")).status == 404


@pytest.mark.asyncio
async def test_the_assigned_models_are_opened_once_the_tables_are_recovered():
    app = make_app()
    scorer = make_scorer()
    make_service(app, scorer)
    app.assignor._assignment = ClientAssignment(actives={"transactions": [0, 1], "other": [3]}, standbys={})
    assert await http.open_assigned_models(app, scorer, "transactions") == []  # not recovered yet
    assert scorer.partitions == {}
    assign(app, [0, 1])
    assert await http.open_assigned_models(app, scorer, "transactions") == [0, 1]
    assert sorted(scorer.partitions) == [0, 1]
    assert await http.open_assigned_models(app, scorer, "transactions") == []  # opened once


@pytest.mark.asyncio
async def test_a_model_opened_for_a_partition_revoked_meanwhile_is_dropped():
    app = make_app()

    async def host_started_during_a_rebalance():
        assign(app, [1])  # partition 0 went to another worker while its model was opening
        return LocalHost()

    scorer = make_scorer(host_started_during_a_rebalance)
    assign(app, [0])
    assert await http.open_assigned_models(app, scorer, "transactions") == [0]
    assert scorer.partitions == {}
    host = await scorer.host()
    assert host.learners.learners == {}  # dropped from the model host too


@pytest.mark.asyncio
async def test_livez_answers_while_the_model_host_does():
    app = make_app()
    make_service(app, make_scorer())
    async with web_client(app) as web:
        response = await web.get("/livez")
        assert response.status == 200
        body = await response.json()
        assert body["live"] is True and body["model_host_ms"] >= 0


class SilentHost:
    """A model host that never answers (a stuck model process)."""

    def submit(self, ops):
        return asyncio.get_running_loop().create_future()


@pytest.mark.asyncio
async def test_livez_is_503_when_the_model_host_does_not_answer_in_time():
    async def silent():
        return SilentHost()

    app = make_app()
    make_service(app, make_scorer(silent))
    async with web_client(app) as web:
        response = await web.get("/livez")
        assert response.status == 503
        assert await response.json() == {"live": False, "reason": "the model host did not answer within 0.5 s"}


@pytest.mark.asyncio
async def test_livez_is_503_once_the_model_process_is_gone():
    exited = []

    async def process_host():
        return await ProcessHost.start(on_exit=exited.append)

    app = make_app()
    scorer = make_scorer(process_host)
    make_service(app, scorer)
    async with web_client(app) as web:
        host = await scorer.host()
        assert await host.submit([("ping", None)]) == [True]  # the model process has started
        assert (await web.get("/livez")).status == 200  # a round trip to it
        host.process.kill()
        await host.process.wait()
        for _ in range(100):
            if exited:
                break
            await asyncio.sleep(0.05)
        response = await web.get("/livez")
        assert response.status == 503
        assert (await response.json())["reason"].startswith("the model host failed: the model process exited")
        await host.close()


@pytest.mark.asyncio
async def test_model_shows_each_partition_learning_checkpoint_positions_and_prequential_metrics():
    app = make_app()
    scorer = make_scorer()
    make_service(app, scorer)
    async with web_client(app) as web:
        await scorer.states.get(3)
        body = await (await web.get("/model")).json()
        assert body == {"partitions": {"3": {
            "model": "lr", "version": "lr-g0", "restored": False, "events_learned": 0,
            "learned_since_checkpoint": 0, "last_checkpoint": None, "positions": {}, "labels_pending": 0,
            "prequential": None}}}

        await learn(scorer, 3, [transaction(i, i % 2) for i in range(20)] + [transaction(20, None)])
        part = (await (await web.get("/model")).json())["partitions"]["3"]
        assert part["events_learned"] == part["learned_since_checkpoint"] == 20
        assert part["positions"] == {"transactions": 20}
        assert part["labels_pending"] == 1
        report = await asyncio.to_thread(scorer.partitions[3].evaluator.snapshot().report)
        assert part["prequential"]["cumulative"]["roc_auc"] == report["cumulative"]["roc_auc"]
        assert part["prequential"]["window"]["count"] == 20
        assert 0.0 <= part["prequential"]["window"]["pr_auc"] <= 1.0
        assert part["prequential"]["window_size"] == scorer.prequential_window

        before = time.time()
        await scorer.states.checkpoint(3)
        part = (await (await web.get("/model")).json())["partitions"]["3"]
        assert part["last_checkpoint"] >= before
        assert part["learned_since_checkpoint"] == 0 and part["events_learned"] == 20


def score(i: int, probability: float, partition: int = 0) -> Score:
    return Score(transaction_id=f"tx-{i}", event_time=1.7e9 + i, fraud_probability=probability, decision=False,
                 threshold=0.5, model_version="lr-g0", events_learned=i, processing_time=1.7e9, partition=partition,
                 offset=i, label=None)


@pytest.mark.asyncio
async def test_drift_shows_the_last_alert_of_each_stream():
    app = make_app()
    watch = DriftWatch(ChangelogTable(), new_feature_monitor=lambda: feature_monitor(["Amount"]),
                       new_score_monitor=lambda: score_monitor(settle=0), features=["Amount"])  # alerts at once
    make_service(app, drift=watch)
    async with web_client(app) as web:
        assert await (await web.get("/drift")).json() == {"alerts": {}}
        alerts = []
        for i in range(4000):
            alerts += watch.observe_score(score(i, 0.05 if i < 2000 else 0.95, partition=i % 2), offset=i)
        assert alerts and {a.stream for a in alerts} == {"score"}
        body = await (await web.get("/drift")).json()
        assert list(body["alerts"]) == ["score"]
        last = body["alerts"]["score"]
        assert (last["offset"], last["partition"], last["mean_after"]) == (
            alerts[-1].offset, alerts[-1].partition, alerts[-1].mean_after)
        assert last["mean_after"] > last["mean_before"]


# --- central learning: the replicas on every worker, the learner on one ----------------------------
def confirmed(*args):
    done = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


def make_central(host, **learner_options) -> tuple[Scorer, CentralLearner]:
    """A central-mode scorer (a replica, no checkpoint table, as the service builds it) and the
    central learner (with ``learner_options``), sharing ``host``; the learner writes a snapshot every
    50 examples."""
    async def start_host():
        return host

    async def published(key, value):
        return confirmed()

    async def no_snapshot():
        return []

    scorer = Scorer(start_host, None, ChangelogTable(), model_factory=model_factory(kind="lr"), record=Transaction,
                    replica=Replica(model_factory(kind="lr")), send_example=confirmed)
    learner = CentralLearner(start_host, lambda: LearnerBook(every=50, every_s=None), model_factory(kind="lr"),
                             signer=Signer("k" * 32), last_snapshots=no_snapshot, read_back=None, publish=published,
                             topic="examples", **learner_options)
    return scorer, learner


def example_batches(n: int, label=lambda i: int(i % 5 == 0), size: int = 20) -> list[list[tuple[int, bytes]]]:
    """``n`` examples of the examples topic, ``(offset, value)`` in batches of ``size``."""
    values = [(i, encode(Example(f"tx-{i}", 1.7e9 + i, {"V1": float(i % 5 == 0) + (i % 3) / 3}, label(i),
                                 ("transactions", 0, i)))) for i in range(n)]
    return [values[first:first + size] for first in range(0, n, size)]


def assign_with_examples(app, examples: bool) -> None:
    """The assignment of a central-mode worker: partition 0 of transactions, and of examples if ``examples``."""
    assign(app, [0])
    app.assignor._assignment = ClientAssignment(
        actives={"transactions": [0], **({"examples": [0]} if examples else {})}, standbys={})


@pytest.mark.asyncio
async def test_model_shows_the_central_learner_where_it_runs_and_where_it_does_not():
    app = make_app()
    scorer, learner = make_central(LocalHost())
    make_service(app, scorer, learner=learner)
    async with web_client(app) as web:
        await scorer.states.get(0)
        assign_with_examples(app, examples=False)
        body = await (await web.get("/model")).json()
        assert body["learner"] is None
        assert body["learner_absent"] == "the learner runs on the worker that owns partition 0 of examples, not on this one"
        assert body["partitions"]["0"]["version"] == scorer.replica.version  # the replica

        assign_with_examples(app, examples=True)
        body = await (await web.get("/model")).json()
        assert body["learner"] is None
        assert body["learner_absent"] == ("partition 0 of examples is assigned to this worker: the learner starts "
                                          "with its first example")

        before = time.time()
        for batch in example_batches(120):
            await learner.learn(batch)
        await learner.report_prequential()  # what fraud_prequential_metric{partition="central"} shows
        body = await (await web.get("/model")).json()
        assert "learner_absent" not in body
        entry = body["learner"]
        prequential = entry.pop("prequential")
        written_at = entry["last_snapshot"].pop("written_at")
        assert entry == {
            "model": "lr", "version": "lr-g0@120", "examples_received": 120, "examples_learned": 120,
            "sample_rate": 1.0, "examples_offset": 119, "decisions": {"learn": 120, "duplicate": 0, "subsampled": 0},
            "restored_from": None, "caught_up": 0, "last_snapshot": {"version": "lr-g0@120", "examples_offset": 119}}
        assert before <= written_at <= time.time()
        assert prequential["window_size"] == learner.book.evaluator.window
        assert prequential["window"]["count"] == prequential["cumulative"]["count"] == 120
        for window in ("window", "cumulative"):
            for metric in ("roc_auc", "pr_auc", "precision", "recall"):
                published = metrics.REGISTRY.get_sample_value(
                    "fraud_prequential_metric", {"partition": "central", "metric": metric, "window": window})
                assert prequential[window][metric] == published, (window, metric)
        assert 0.0 < prequential["window"]["pr_auc"] <= 1.0
        assert body["partitions"]["0"]["version"] == scorer.replica.version  # the replica, beside the learner


@pytest.mark.asyncio
async def test_model_shows_an_undefined_learner_metric_as_null_and_the_learner_alone_without_partitions():
    app = make_app()
    _, learner = make_central(LocalHost())
    make_service(app, learner=learner)  # a worker whose scoring agent does not run
    async with web_client(app) as web:
        assign_with_examples(app, examples=True)
        for batch in example_batches(20, label=lambda i: 0):  # no fraud yet: the AUCs are undefined
            await learner.learn(batch)
        body = await (await web.get("/model")).json()
        assert body["partitions"] == {}
        assert body["learner"]["examples_received"] == 20 and body["learner"]["last_snapshot"] is None
        assert body["learner"]["prequential"]["window"]["roc_auc"] is None
        assert body["learner"]["prequential"]["window"]["count"] == 20


@pytest.mark.asyncio
async def test_drift_shows_the_central_learners_error_monitor_where_it_runs():
    from app.drift.detectors import error_monitor
    from app.drift.learner_errors import LearnerErrorWatch

    sent = []

    async def send(alerts):
        sent.extend(alerts)

    app = make_app()
    _, learner = make_central(LocalHost(), error_watch=lambda: LearnerErrorWatch(lambda: error_monitor(settle=100)),
                              send_alerts=send)
    make_service(app, learner=learner)  # no drift agent here: the page is the learner's
    async with web_client(app) as web:
        assert await (await web.get("/drift")).json() == {"alerts": {}, "learner": None}  # not running here
        # the label is the feature's rule until example 1,500, then its opposite
        for batch in example_batches(2000, label=lambda i: int(i % 5 == 0) ^ (i >= 1500)):
            await learner.learn(batch)
        assert len(sent) == 1 and 1500 < sent[0].offset < 1600, sent
        body = await (await web.get("/drift")).json()
        entry = body["learner"]
        assert body["alerts"] == {}
        assert (entry["stream"], entry["detector"], entry["values"], entry["waiting"]) == (
            "error", "ADWIN(delta=0.002,clock=32)", 2000, 100)
        assert 0 < entry["width"] < 2000 - 100
        last = entry["last_alert"]
        assert (last["offset"], last["partition"], last["stream"]) == (sent[0].offset, -1, "error")
        assert last["description"] == sent[0].description
