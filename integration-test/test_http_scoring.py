"""``POST /score`` on the real stack, two workers sharing two partitions: each transaction is scored
by the model of the partition its producer-keyed message went to, by whichever worker is asked (the
other one's partition is forwarded to it), as JSON or Confluent-framed Avro, and nothing is learned."""
from __future__ import annotations

import time

import httpx

from app.data.synthetic import generate
from app.http_score import key_partition
from app.records import Score, Transaction
from app.replay import message_key, to_transaction, transaction_id
from app.serialization import ConfluentAvroCodec, make_registry_client
from app.testing.kafka import read
from app.testing.replay import replay
from app.testing.stack import REGISTRY
from app.testing.worker import assert_healthy

ROWS = 2000
PARTITIONS = 2
ENV = {"FRAUD_AGENTS": "scoring", "FRAUD_ARF_TREES": "3", "FRAUD_TOPIC_PARTITIONS": str(PARTITIONS),
       "FRAUD_CHECKPOINT_EVERY_EVENTS": "1000"}


def learned(worker) -> dict[int, int]:
    """Events learned by each partition's model on ``worker`` (``/model``)."""
    partitions = httpx.get(worker.url + "/model", timeout=10.0).json()["partitions"]
    return {int(p): state["events_learned"] for p, state in partitions.items()}


def wait_split(workers, timeout_s: float = 120.0) -> None:
    """Until each worker is ready with one partition's model open."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            ready = all(httpx.get(w.url + "/readyz", timeout=5.0).status_code == 200 for w in workers)
            split = ready and sorted(len(learned(w)) for w in workers) == [1] * len(workers)
        except httpx.TransportError:
            split = False
        if split:
            return
        assert time.monotonic() < deadline, "\n".join(w.log_tail(30) for w in workers)
        time.sleep(0.5)


def test_score_by_the_owner_of_the_partition_without_learning(make_worker, names):
    first, second = make_worker(ENV), make_worker(ENV)
    wait_split([first, second])
    rows = generate(ROWS, seed=9)
    replay(names, rows, labels="in-event")
    stream_partition = {v["transaction_id"]: v["partition"]
                        for _, v, _, _ in read(names.scores, Score, expect=ROWS, timeout_s=180)}
    deadline = time.monotonic() + 60
    while sum(learned(first).values()) + sum(learned(second).values()) < ROWS:
        assert time.monotonic() < deadline, (learned(first), learned(second))
        time.sleep(0.5)
    before = {**learned(first), **learned(second)}
    assert sorted(before) == [0, 1] and sum(before.values()) == ROWS

    codec = ConfluentAvroCodec(make_registry_client(REGISTRY), names.transactions, Transaction.avro_schema_to_python())
    seen_partitions = set()
    with httpx.Client(timeout=10.0) as http:
        for i in range(0, ROWS, ROWS // 40):
            tid = transaction_id("tx", i)
            value = to_transaction(rows[i], tid, time.time(), with_label=False)
            answers = [http.post(w.url + "/score", json=value) for w in (first, second)]
            answers.append(http.post(first.url + "/score", content=codec.dumps(value),
                                     headers={"Content-Type": "application/vnd.confluent.avro"}))
            for response in answers:
                assert response.status_code == 200, response.text
            got = answers[0].json()
            assert all(a.json() == got for a in answers[1:]), [a.json() for a in answers]  # one model answers
            partition = got["partition"]
            assert partition == stream_partition[tid] == key_partition(message_key(value), PARTITIONS)
            assert got["transaction_id"] == tid and got["events_learned"] == before[partition]
            assert got["model_version"] == "arf3+lr-g0" and len(got["members"]) == 3
            assert 0.0 <= got["fraud_probability"] <= 1.0
            assert got["decision"] == (got["fraud_probability"] >= got["threshold"]) and got["threshold"] == 0.5
            seen_partitions.add(partition)

        bad = http.post(second.url + "/score", json={**value, "Amount": "a lot"})
        assert bad.status_code == 400 and "Amount" in bad.json()["error"]
    assert seen_partitions == {0, 1}  # each worker answered for its partition, and forwarded the other
    assert {**learned(first), **learned(second)} == before  # nothing learned
    for worker in (first, second):
        assert_healthy(worker)
