"""The worker's health and model pages on the real stack: /readyz is 503 until the worker is ready,
/livez answers, /model shows what the models learned from a replay."""
from __future__ import annotations

import time

import httpx

from app.data.synthetic import generate
from app.records import Score
from app.testing.kafka import read
from app.testing.replay import replay

ROWS = 3000
PARTITIONS = 2
ENV = {"FRAUD_AGENTS": "scoring", "FRAUD_ARF_TREES": "3", "FRAUD_TOPIC_PARTITIONS": str(PARTITIONS),
       "FRAUD_CHECKPOINT_EVERY_EVENTS": "1000"}


def get(worker, path: str) -> httpx.Response | None:
    """The worker's answer to ``GET path``, or None while its web server does not answer."""
    try:
        return httpx.get(worker.url + path, timeout=5.0)
    except httpx.TransportError:
        return None


def test_readyz_then_model_after_a_replay(make_worker, names):
    worker = make_worker(ENV, start=False).launch()
    answers = []  # (status, body) of /readyz, from the first answer until the first 200
    deadline = time.monotonic() + 90
    while not answers or answers[-1][0] != 200:
        assert time.monotonic() < deadline, f"not ready: {answers[-3:]}\n{worker.log_tail()}"
        assert worker.alive(), worker.log_tail()
        response = get(worker, "/readyz")
        if response is not None:
            answers.append((response.status_code, response.json()))
            assert response.status_code in (200, 503), response.text
            if response.status_code == 503:
                assert response.headers["Retry-After"].isdigit()
        time.sleep(0.05)
    first_status, first_body = answers[0]
    assert first_status == 503 and first_body["ready"] is False and first_body["missing"], answers[:3]
    assert answers[-1][1] == {"ready": True}

    # ready before any transaction: the assigned partitions' models are open
    live = get(worker, "/livez")
    assert live.status_code == 200 and live.json()["live"] is True
    before = get(worker, "/model").json()["partitions"]
    assert sorted(before) == [str(p) for p in range(PARTITIONS)]
    assert all(p["events_learned"] == 0 and p["prequential"] is None for p in before.values())

    replay(names, generate(ROWS, seed=5), labels="in-event")
    read(names.scores, Score, expect=ROWS, timeout_s=120)
    deadline = time.monotonic() + 30
    while True:
        partitions = get(worker, "/model").json()["partitions"]
        learned = sum(p["events_learned"] for p in partitions.values())
        if learned == ROWS or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert learned == ROWS, (partitions, worker.log_tail())
    for partition in partitions.values():
        assert partition["model"] and partition["version"].startswith(partition["model"] + "-g")
        assert partition["positions"] == {names.transactions: partition["events_learned"] - 1}  # offsets from 0
        assert partition["prequential"]["cumulative"]["count"] == partition["events_learned"]
        assert partition["prequential"]["window"]["count"] <= partition["prequential"]["window_size"]
        if partition["events_learned"] >= 1000:  # checkpoint_every: one was written
            assert partition["last_checkpoint"] > time.time() - 300
    assert any(p["prequential"]["cumulative"]["roc_auc"] is not None for p in partitions.values())
    assert get(worker, "/readyz").status_code == 200
