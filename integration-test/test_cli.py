"""The operator's command line (``python -m app.cli``, run as an operator would) on the real stack:
a model exported from one cluster and imported into another (another app id, other topics, another
state key) gives the same probabilities for the same transactions; writing state is refused while
a worker runs; dead letters replayed once their cause is fixed are each scored once."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from app.data.synthetic import generate
from app.records import DeadLetter, Score, Transaction
from app.replay import to_transaction, transaction_id
from app.serialization import ConfluentAvroCodec, make_registry_client
from app.testing.kafka import delete_topics, produce_raw, read
from app.testing.names import Names
from app.testing.replay import replay
from app.testing.stack import BROKER, REGISTRY
from app.testing.worker import Worker, wait_committed

ROOT = Path(__file__).resolve().parents[1]
LEARNED = 1200
PROBES = 150
TIME_BASE = 1.7e9
# A checkpoint moves a model, not a cluster's card windows: the rows carry card ids, so with window
# features on a fresh cluster's probes would get other inputs (their cards' history is not there)
ENV = {"FRAUD_AGENTS": "scoring", "FRAUD_ARF_TREES": "3", "FRAUD_CHECKPOINT_EVERY_EVENTS": str(LEARNED),
       "FRAUD_WINDOW_FEATURES": "false"}


def cli(names: Names, key: str, *args: str) -> subprocess.CompletedProcess:
    """``python -m app.cli ARGS`` with the settings of the app of ``names`` and the state ``key``."""
    env = {**os.environ, **names.env(), "FRAUD_KAFKA_BROKER": BROKER, "FRAUD_SCHEMA_REGISTRY_URL": REGISTRY,
           "FRAUD_STATE_KEY": key, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def probabilities(names: Names, ids: set[str]) -> dict[str, tuple[float, int]]:
    """The (fraud probability, events learned) of each transaction of ``ids`` scored on ``names.scores``."""
    scores = read(names.scores, Score, timeout_s=90, idle_s=3)
    return {v["transaction_id"]: (v["fraud_probability"], v["events_learned"])
            for _, v, _, _ in scores if v["transaction_id"] in ids}


def wait_scores(names: Names, ids: set[str], worker, timeout_s: float = 180) -> dict[str, tuple[float, int]]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = probabilities(names, ids)
        if set(found) >= ids:
            return found
        assert time.monotonic() < deadline, f"{worker.name}: {len(found)} of {len(ids)} scored\n{worker.log_tail()}"


def test_a_model_exported_from_one_cluster_and_imported_into_another_scores_the_same(make_worker, names, tmp_path):
    key_a, key_b = "the first cluster's state key, 32+", "the second cluster's state key, 32+"
    first = make_worker({**ENV, "FRAUD_STATE_KEY": key_a}, name="first")
    replay(names, generate(LEARNED, seed=11), labels="in-event", time_base=TIME_BASE)
    deadline = time.monotonic() + 120
    while True:  # learned every row, and checkpointed them (CHECKPOINT_EVERY_EVENTS)
        status = cli(names, key_a, "status", "--json", "--worker", first.url)
        model = json.loads(status.stdout)["workers"][first.url]["partitions"]["0"]
        if model["events_learned"] == LEARNED and model["last_checkpoint"] is not None:
            break
        assert time.monotonic() < deadline, (status.stdout, first.log_tail())
        time.sleep(1)
    table = cli(names, key_a, "status", "--worker", first.url)
    assert table.returncode == 0 and table.stdout.splitlines()[1].split()[:4] == ["0", first.url, model["version"],
                                                                                  str(LEARNED)], table.stdout

    refused = cli(names, key_a, "reset", "--partition", "0")  # the worker owns the partition
    assert refused.returncode == 1 and f"refused: the consumer group {names.app_id} of the app is Stable with 1 " \
                                       f"member" in refused.stderr, refused.stderr

    path = tmp_path / "p0.fsckpt"
    deadline = time.monotonic() + 30
    while True:  # the page shows the checkpoint once it is handed to the producer: it may not be in Kafka yet
        exported = cli(names, key_a, "checkpoint", "export", "--partition", "0", "--out", str(path))
        if exported.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert exported.returncode == 0 and path.exists(), exported.stderr
    other_key = cli(names, key_b, "checkpoint", "export", "-p", "0", "-o", str(tmp_path / "x"))
    assert other_key.returncode == 1 and "does not verify with this FRAUD_STATE_KEY (other_key" in other_key.stderr

    probes = generate(PROBES, seed=12)
    ids = {transaction_id("probe", i) for i in range(PROBES)}
    replay(names, probes, labels="none", id_prefix="probe", time_base=TIME_BASE)  # unlabelled: nothing learned
    scored_a = wait_scores(names, ids, first)
    assert {learned for _, learned in scored_a.values()} == {LEARNED}
    assert len({probability for probability, _ in scored_a.values()}) > PROBES // 2  # a model that tells them apart

    other = Names("cliimport")
    second = None
    try:
        imported = cli(other, key_b, "checkpoint", "import", "--partition", "0", str(path))
        assert imported.returncode == 0, imported.stderr
        assert f"created {other.app_id}-model-checkpoints-changelog" in imported.stdout  # the app never ran here
        second = Worker(other, tmp_path / "second", {**ENV, "FRAUD_STATE_KEY": key_b}, name="second").start()
        replay(other, probes, labels="none", id_prefix="probe", time_base=TIME_BASE)
        scored_b = wait_scores(other, ids, second)
        assert scored_b == scored_a  # the same probabilities, from a model that learned the same rows
        assert "partition 0: restored" in second.log_text(), second.log_tail()
        assert "refused the model checkpoint" not in second.log_text()
        second.stop()
        second = None

        reset = cli(other, key_b, "reset", "--partition", "0")  # no worker runs now
        assert reset.returncode == 0 and "deleted the model checkpoint of partition 0" in reset.stdout, reset.stderr
        gone = cli(other, key_b, "checkpoint", "export", "-p", "0", "-o", str(tmp_path / "y"))
        assert gone.returncode == 1 and "partition 0 has no model checkpoint" in gone.stderr
    finally:
        if second is not None:
            second.stop()
        delete_topics(other)


def dead_letter(codec, tx_codec, topic: str, reason: str, tid: str, offset: int) -> bytes:
    """A dead letter of a valid transaction, as a worker writes one (the message's bytes kept whole)."""
    value = tx_codec.dumps(to_transaction(generate(1, seed=offset)[0], tid, TIME_BASE, with_label=True))
    return codec.dumps({"reason": reason, "error": f"{reason}: while the cause lasted", "topic": topic,
                        "partition": 0, "offset": offset, "processing_time": time.time(), "timestamp": None,
                        "key": tid.encode(), "value": value})


def test_dead_letters_replayed_once_the_cause_is_fixed_are_each_scored_once(make_worker, names):
    worker = make_worker({"FRAUD_AGENTS": "scoring", "FRAUD_ARF_TREES": "3"})
    replay(names, generate(50, seed=1), labels="in-event", time_base=TIME_BASE)
    read(names.scores, Score, expect=50, timeout_s=90)

    client = make_registry_client(REGISTRY)
    codec = ConfluentAvroCodec(client, names.dead_letters, DeadLetter.avro_schema_to_python())
    tx_codec = ConfluentAvroCodec(client, names.transactions, Transaction.avro_schema_to_python())
    letters = [(f"late-{i}".encode(), dead_letter(codec, tx_codec, names.transactions, "registry-unavailable",
                                                  f"late-{i}", 100 + i)) for i in range(20)]
    letters += [(f"other-{i}".encode(), dead_letter(codec, tx_codec, names.transactions, "invalid-value",
                                                    f"other-{i}", 200 + i)) for i in range(5)]
    letters += [(f"label-{i}".encode(), dead_letter(codec, tx_codec, names.labels, "registry-unavailable",
                                                    f"label-{i}", 300 + i)) for i in range(3)]
    produce_raw(names.dead_letters, letters)
    chosen = ("dead-letters", "replay", "--reason", "registry-unavailable", "--topic", names.transactions)

    dry = cli(names, "", *chosen, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("would send ") == 20 and "would replay 20 dead letters (of 28 read" in dry.stdout

    done = cli(names, "", *chosen)
    assert done.returncode == 0 and "replayed 20 dead letters (of 28 read" in done.stdout, done.stderr
    read(names.scores, Score, expect=70, timeout_s=90)
    wait_committed(worker, names.transactions)
    scores = read(names.scores, Score, timeout_s=30, idle_s=3)  # anything more would be a duplicate
    replayed = [v["transaction_id"] for _, v, _, _ in scores if not v["transaction_id"].startswith("tx-")]
    assert sorted(replayed) == sorted(f"late-{i}" for i in range(20)), worker.log_tail()
    assert len(read(names.dead_letters, timeout_s=30, idle_s=2)) == 28  # none of them was rejected again
