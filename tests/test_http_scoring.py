"""``POST /score`` (:mod:`app.http_score`) over HTTP, on in-memory Faust apps whose assignment,
rebalancing and recovery flags the tests set as Faust would: bad bodies, a worker not ready, a score
equal to the model's prediction with nothing learned, an Avro body, and a request routed to the
worker that owns the partition."""
from __future__ import annotations

import io
import json
import types
import uuid

import fastavro
import faust
import pytest

from app import http, http_score
from app.learning.model_host import LocalHost
from app.learning.pipeline import model_factory
from app.records import Transaction
from app.scoring import Item, Scorer
from app.serialization.avro import ConfluentAvroCodec, validate_transaction
from app.service import Service
from tests.fakes import ChangelogTable, SentRecords, assign, web_client

RETRY_AFTER_S = 7
TOPIC = "transactions"


class Registry:
    """What the Avro codec asks of a registry client: the schema of id 1 is the Transaction's."""

    def get_by_id(self, schema_id: int):
        return types.SimpleNamespace(schema=Transaction.avro_schema_to_python()) if schema_id == 1 else None


def avro_codec(topic: str, record: type, validate=None) -> ConfluentAvroCodec:
    codec = ConfluentAvroCodec(Registry(), topic, record.avro_schema_to_python(), validate=validate)
    codec._writer_id = 1  # registered
    return codec


def make_scorer(hosts: list) -> Scorer:
    async def host():
        hosts.append(LocalHost())
        return hosts[-1]

    return Scorer(host, ChangelogTable(), ChangelogTable(), model_factory=model_factory(kind="arf+lr", trees=2),
                  record=Transaction, checkpoint_every=1_000_000, decision_threshold=0.3)


def make_app(partition_of) -> tuple[faust.App, Scorer, list]:
    app = faust.App(f"score-{uuid.uuid4().hex[:8]}", broker="memory://", store="memory://")
    hosts: list = []
    scorer = make_scorer(hosts)
    topics = types.SimpleNamespace(transactions=SentRecords(TOPIC), codec=avro_codec)
    http.register(app, Service(topics, scorer=scorer), retry_after_s=RETRY_AFTER_S, partition_of=partition_of)
    return app, scorer, hosts


def transaction(i: int, label: int | None = None) -> dict:
    return {"transaction_id": f"tx-{i}", "event_time": 1.7e9 + i, "Amount": float(i % 7), "Class": label,
            **{f"V{k}": float((i * k) % 5) - 2.0 + (3.0 if label else 0.0) for k in range(1, 29)}}


async def train(scorer: Scorer, partition: int, n: int) -> None:
    items = [Item(Transaction(**transaction(i, i % 5 == 0)), f"tx-{i}".encode(), partition, i) for i in range(n)]
    async for _ in scorer.scored(await scorer.submit(items)):
        pass


@pytest.mark.asyncio
async def test_a_bad_body_is_400_with_the_reason():
    app, scorer, _ = make_app(lambda key: 0)
    assign(app, [0])
    await scorer.states.get(0)
    good = transaction(1)
    async with web_client(app) as web:
        cases = [
            (b"{not json", "the body is not JSON"),
            (b"[1, 2]", "the body must be a JSON object, not list"),
            (json.dumps({k: v for k, v in good.items() if k != "V7"}).encode(), "missing fields: V7"),
            (json.dumps({**good, "Amount": "12"}).encode(), "Transaction.Amount is <12>"),
            (json.dumps({**good, "amount": 1.0}).encode(), "unknown fields: amount"),
            (json.dumps({**good, "transaction_id": ""}).encode(), "empty transaction_id"),
            (json.dumps({**good, "Amount": float("nan")}).encode(), "Amount is nan"),
        ]
        for body, reason in cases:
            response = await web.post("/score", data=body, headers={"Content-Type": "application/json"})
            assert response.status == 400, (body, await response.text())
            assert reason in (await response.json())["error"], body
        # a Confluent-framed Avro body that ends early
        response = await web.post("/score", data=b"\x00\x00\x00\x00\x01\x02", headers={"Content-Type": "application/octet-stream"})
        assert response.status == 400
        assert (await response.json())["error"].startswith("truncated")


@pytest.mark.asyncio
async def test_503_with_retry_after_until_the_partition_can_be_scored_here():
    app, scorer, _ = make_app(lambda key: 1)
    body = json.dumps(transaction(3)).encode()
    async with web_client(app) as web:
        async def answer():
            response = await web.post("/score", data=body)
            assert response.status == 503, await response.text()
            assert response.headers["Retry-After"] == str(RETRY_AFTER_S)
            return (await response.json())["error"]

        app.rebalancing = True
        assert await answer() == "a rebalance is under way"
        assign(app, [0])  # recovered, but partition 1 is another worker's (and no owner is known)
        assert await answer() == "partition 1 of transactions is not assigned to this worker"
        assign(app, [0, 1])
        assert await answer() == "the model of partition 1 is not open yet"
        app.tables.on_rebalance_start()
        assert await answer() == "the tables are not recovered yet"
        assign(app, [0, 1])
        await scorer.states.get(1)
        assert (await web.post("/score", data=body)).status == 200

    app, _, _ = make_app(lambda key: None)  # the topic's metadata not known yet
    assign(app, [0])
    async with web_client(app) as web:
        response = await web.post("/score", data=body)
        assert response.status == 503 and response.headers["Retry-After"] == str(RETRY_AFTER_S)
        assert (await response.json())["error"] == "the partitions of transactions are not known yet"

    def consumer_not_started(key):
        raise RuntimeError("the consumer is not started")

    app, _, _ = make_app(consumer_not_started)
    assign(app, [0])
    async with web_client(app) as web:
        response = await web.post("/score", data=body)
        assert response.status == 503 and response.headers["Retry-After"] == str(RETRY_AFTER_S)
        assert (await response.json())["error"] == "the partitions of transactions are not known yet (RuntimeError)"


@pytest.mark.asyncio
async def test_a_score_is_the_models_prediction_and_nothing_is_learned():
    app, scorer, hosts = make_app(lambda key: 2)
    assign(app, [2])
    await train(scorer, 2, 300)
    hosted = scorer.partitions[2].learner
    model = hosts[0].learners.learners[2]
    learned_before, model_learned_before = hosted.events_learned, model.events_learned
    assert learned_before == model_learned_before == 300
    async with web_client(app) as web:
        for i in (1000, 1005):
            tx = transaction(i, label=1)  # a label in the body is not learned either
            response = await web.post("/score", json=tx)
            assert response.status == 200, await response.text()
            got = await response.json()
            x = scorer.features(Transaction(**tx))
            expected = model.predict_proba(x)
            assert got == {
                "transaction_id": tx["transaction_id"], "fraud_probability": expected, "decision": expected >= 0.3,
                "threshold": 0.3, "model_version": "arf2+lr-g0", "events_learned": 300,
                "members": model.model.last_member_probabilities, "partition": 2,
            }
            assert len(got["members"]) == 3 and 0.0 < expected < 1.0
    assert hosted.events_learned == model.events_learned == learned_before
    assert hosted.learned_since_checkpoint == 300
    assert scorer.partitions[2].evaluator.count == 300  # no prequential count either
    assert len(scorer.partitions[2].pending) == 0  # and nothing waits for a label


@pytest.mark.asyncio
async def test_an_avro_body_in_the_confluent_wire_format_scores_as_its_json():
    app, scorer, _ = make_app(lambda key: 0)
    assign(app, [0])
    await train(scorer, 0, 100)
    tx = transaction(7)
    framed = avro_codec(TOPIC, Transaction, validate_transaction).dumps(Transaction(**tx))
    assert framed[0] == 0
    async with web_client(app) as web:
        avro = await web.post("/score", data=framed, headers={"Content-Type": "application/vnd.confluent.avro"})
        plain = await web.post("/score", json=tx)
        assert avro.status == plain.status == 200, await avro.text()
        assert await avro.json() == await plain.json()

        out = io.BytesIO()
        out.write(b"\x00\x00\x00\x00\x01")
        fastavro.schemaless_writer(out, fastavro.parse_schema(Transaction.avro_schema_to_python()),
                                   {**tx, "Amount": float("inf")})
        response = await web.post("/score", data=out.getvalue(), headers={"Content-Type": "application/octet-stream"})
        assert response.status == 400
        assert (await response.json())["error"] == "invalid-value: Amount is inf"


@pytest.mark.asyncio
async def test_a_partition_owned_by_another_worker_is_scored_there():
    owner, owner_scorer, _ = make_app(lambda key: 1)
    assign(owner, [1])
    await train(owner_scorer, 1, 200)
    async with web_client(owner) as owner_web:
        owner_url = str(owner_web.make_url("/"))
        front, front_scorer, _ = make_app(lambda key: 1)
        assign(front, [0])
        await front_scorer.states.get(0)
        front.assignor.external_topic_distribution = {
            str(front.conf.canonical_url): {TOPIC: [0]}, owner_url: {TOPIC: [1]}}
        async with web_client(front) as front_web:
            tx = transaction(11)
            routed = await front_web.post("/score", json=tx)
            direct = await owner_web.post("/score", json=tx)
            assert routed.status == direct.status == 200, await routed.text()
            assert await routed.json() == await direct.json()
            assert (await routed.json())["events_learned"] == 200  # the owner's model, not the front's

            # a request already forwarded once is not forwarded again: the front does not own it
            again = await front_web.post("/score", json=tx, headers={http_score.FORWARDED_HEADER: "1"})
            assert again.status == 503
            assert (await again.json())["error"] == "partition 1 of transactions is not assigned to this worker"

            # the owner's 503 comes back as it is, with its Retry-After
            owner.rebalancing = True
            response = await front_web.post("/score", json=tx)
            assert response.status == 503 and response.headers["Retry-After"] == str(RETRY_AFTER_S)
            assert (await response.json())["error"] == "a rebalance is under way"
    # the owner gone: 503
    async with web_client(front) as front_web:
        response = await front_web.post("/score", json=tx)
        assert response.status == 503 and response.headers["Retry-After"] == str(RETRY_AFTER_S)
        assert "did not answer" in (await response.json())["error"]


@pytest.mark.asyncio
async def test_a_card_s_transaction_is_scored_by_its_card_s_partition_with_its_windows_and_nothing_stored():
    """The partition is the one the card id maps to (the key producers use), and the model's input
    has the card's windows with the transaction added, as the stream would compute them; the
    card's windows are left as they were."""
    import settings
    from app import configured
    from app.scoring.windows import ScoringWindows

    cards = ChangelogTable()
    windows = ScoringWindows(configured.transaction_features(settings), cards, ChangelogTable(),
                             send_label=lambda key, value: None)
    hosts: list = []

    async def host():
        hosts.append(LocalHost())
        return hosts[-1]

    scorer = Scorer(host, ChangelogTable(), ChangelogTable(), model_factory=model_factory(kind="lr"),
                    features=lambda tx: {"Amount": tx.Amount}, record=Transaction, windows=windows,
                    checkpoint_every=1_000_000, pending_ttl_s=1e9)
    keys: list[bytes] = []
    app = faust.App(f"score-{uuid.uuid4().hex[:8]}", broker="memory://", store="memory://")
    topics = types.SimpleNamespace(transactions=SentRecords(TOPIC), codec=avro_codec)
    http.register(app, Service(topics, scorer=scorer), retry_after_s=RETRY_AFTER_S,
                  partition_of=lambda key: keys.append(key) or 1)
    assign(app, [1])
    earlier = [Transaction(**{**transaction(i, 0), "card_id": "card-7"}) for i in range(3)]
    async for _ in scorer.scored(await scorer.submit([Item(tx, tx.transaction_id.encode(), 1, i)
                                                      for i, tx in enumerate(earlier)])):
        pass
    written = len(cards.written)
    tx = {**transaction(10), "card_id": "card-7"}
    async with web_client(app) as web:
        response = await web.post("/score", json=tx)
        assert response.status == 200, await response.text()
        got = await response.json()
    assert keys == [b"card-7"]
    x = windows.preview(Transaction(**tx), {"Amount": tx["Amount"]}, 1)
    assert x["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] == 4.0  # the three before it and itself
    assert got["fraud_probability"] == hosts[0].learners.learners[1].predict_proba(x)
    assert len(cards.written) == written  # nothing stored
    assert windows.preview(Transaction(**tx), {"Amount": tx["Amount"]}, 1) == x
