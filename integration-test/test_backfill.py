"""The Spark backfill against the real stack: the features job reads a topic the replay producer
wrote (Confluent Avro, schema from the registry), computes the model's window features as the
stream does, writes Parquet and publishes them; warm-start and scores read the same topic."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

pytest.importorskip("pyspark")

import pyarrow.parquet as pq  # noqa: E402

from app.data.synthetic import generate  # noqa: E402
from app.learning import OnlineLearner  # noqa: E402
from app.process import ROOT  # noqa: E402
from app.serialization import ConfluentAvroCodec, make_registry_client  # noqa: E402
from app.testing.kafka import read  # noqa: E402
from app.testing.replay import replay  # noqa: E402
from app.testing.stack import BROKER, REGISTRY  # noqa: E402

TIME_BASE = 1_700_000_000.0


def backfill(*args: str, timeout: float = 300) -> dict:
    cmd = [sys.executable, "-m", "app.backfill", *args, "--master", "local[2]", "--driver-memory", "1g",
           "--broker", BROKER, "--registry", REGISTRY]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_warm_start_and_scores_read_the_topic(stack, names, tmp_path):
    rows = generate(4000, seed=6, fraud_rate=0.02)
    replay(names, rows, time_base=TIME_BASE)
    checkpoint = tmp_path / "warm.ckpt"
    split = TIME_BASE + rows[3000]["Time"]
    warm = backfill("warm-start", "--source", "kafka", "--topic", names.transactions, "--output", str(checkpoint),
                    "--model-kind", "lr", "--no-window-features", "--until-event-time", str(split))
    assert warm["rows"] == 3000
    learner = OnlineLearner.load(checkpoint)
    assert learner.events_learned == 3000 and learner.meta["warm_start"]["rows"] == 3000
    scored = backfill("scores", "--source", "kafka", "--topic", names.transactions, "--checkpoint", str(checkpoint),
                      "--output", str(tmp_path / "scores"), "--no-window-features")
    assert scored["rows"] == len(rows)
    scores = pq.read_table(tmp_path / "scores").to_pylist()
    assert {s["model_version"] for s in scores} == {learner.version}
    assert all(0.0 <= s["fraud_probability"] <= 1.0 for s in scores)


def test_warm_started_worker_scores_better_than_a_cold_one(make_worker, names, tmp_path):
    """History -> warm-start job -> checkpoint -> a real worker (WARM_START_PATH) and a cold twin score
    the same next 10,000 events; prequential PR-AUC of their scores."""
    from sklearn.metrics import average_precision_score

    from app.data.synthetic import write_csv
    from app.records import Score

    rows = generate(30_000, seed=8, fraud_rate=0.01, n_cards=2000)
    history, upcoming = rows[:20_000], rows[20_000:]
    write_csv(history, tmp_path / "history.csv")
    checkpoint = tmp_path / "warm.ckpt"
    warm = backfill("warm-start", "--source", str(tmp_path / "history.csv"), "--output", str(checkpoint),
                    "--model-kind", "lr", "--no-window-features")
    assert warm["rows"] == len(history)

    model = {"FRAUD_MODEL_KIND": "lr", "FRAUD_AGENTS": "scoring", "FRAUD_WINDOW_FEATURES": "false"}
    make_worker({**model, "FRAUD_WARM_START_PATH": str(checkpoint)}, name="warm")
    cold_scores = f"{names.scores}-cold"
    make_worker({**model, "FRAUD_APP_ID": f"{names.app_id}-cold", "FRAUD_SCORES_TOPIC": cold_scores}, name="cold")
    sent = replay(names, upcoming, time_base=TIME_BASE, keep_ids=True)
    label = {tid: int(r["Class"]) for tid, r in zip(sent.ids, upcoming)}
    assert sum(label.values()) >= 50

    def pr_auc(topic: str) -> float:
        scores = read(topic, Score, expect=len(upcoming), timeout_s=240)
        by_id = {v["transaction_id"]: v for _, v, _, _ in scores}
        assert set(by_id) == set(sent.ids)
        return average_precision_score([label[t] for t in sent.ids], [by_id[t]["fraud_probability"] for t in sent.ids])

    warm_auc, cold_auc = pr_auc(names.scores), pr_auc(cold_scores)
    print(f"prequential PR-AUC over the first {len(upcoming)} events: warm worker {warm_auc:.3f}, cold {cold_auc:.3f}")
    assert warm_auc > cold_auc + 0.05, (warm_auc, cold_auc)


def test_features_job_on_the_replayed_simulator_equals_the_stream_driver(stack, names, tmp_path):
    """The simulator replayed to the topic (keyed by card, ids in the records), read back by Spark's
    Kafka source in the features job: the model's window features in the Parquet output and on the
    published topic equal :class:`app.features.StreamFeatures` over the rows in event-time order,
    labels received 7 days later, to 1e-9."""
    import settings
    from app import configured
    from app.data.simulator import SimulatorConfig, simulate
    from app.features import StreamFeatures

    rows = list(simulate(SimulatorConfig(n_customers=60, n_terminals=100, n_days=40), seed=9).rows())
    sent = replay(names, rows, keep_ids=True)
    assert sent.transactions == len(rows)
    tf = configured.transaction_features(settings)
    expected = {tid: x for tid, (_, x) in zip(sent.ids, StreamFeatures(tf).run(rows, label_delay=7 * 86_400))}
    features_topic = f"{names.prefix}.window-features"
    out = tmp_path / "features"
    result = backfill("features", "--source", "kafka", "--topic", names.transactions, "--output", str(out),
                      "--publish", features_topic)
    assert result["rows"] == len(rows)

    table = pq.read_table(out).to_pylist()
    assert [r["transaction_id"] for r in table] == sent.ids  # written in event-time order
    got = {r["transaction_id"]: r for r in table}
    bad = [(tid, n, expected[tid][n], got[tid][n]) for tid in expected for n in tf.names
           if not math.isclose(got[tid][n], expected[tid][n], rel_tol=1e-12, abs_tol=1e-9)]
    assert not bad, bad[:5]
    assert max(x["TERMINAL_ID_RISK_30DAY_WINDOW"] for x in expected.values()) > 0
    assert max(x["CUSTOMER_ID_NB_TX_7DAY_WINDOW"] for x in expected.values()) >= 10

    # published as Confluent Avro under <topic>-value, keyed by transaction id
    client = make_registry_client(REGISTRY)
    schema = client.get_by_id(result["schema_id"]).raw_schema
    assert [f["name"] for f in schema["fields"]][-len(tf.names):] == list(tf.names)
    codec = ConfluentAvroCodec(client, features_topic, schema)
    published = read(features_topic, None, expect=len(rows), timeout_s=60)
    assert len(published) == len(rows)
    for key, value, _, _ in published:
        decoded = codec.loads(value)
        tid = decoded["transaction_id"]
        assert key.decode() == tid
        assert [decoded[n] for n in tf.names] == pytest.approx([expected[tid][n] for n in tf.names], rel=1e-12)
