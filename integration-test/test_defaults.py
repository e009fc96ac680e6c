"""A deployment with the defaults of ``settings.py`` (the rest of the suite runs one partition and a
model per partition: ``app.testing.single_partition``): central learning on 8 partitions, the
learner learning every fraud and a tenth of the genuine examples, event-time alignment. One worker
scores every partition with replicas of the learner's snapshots; a second worker started later takes
a share of the partitions, and the one learner still takes every labelled transaction in once."""
from __future__ import annotations

import collections

from app.data.synthetic import generate
from app.learning.snapshots import decode as decode_snapshot
from app.state.signing import Signer
from app.testing.kafka import read
from app.testing.single_partition import SINGLE_PARTITION, settings_defaults
from app.testing.worker import wait_for
from test_central_scoring import Stream, examples, scores_by_id

KEY = "a test key of more than sixteen bytes"


def test_with_the_defaults_workers_share_the_partitions_and_feed_one_learner(make_worker, names):
    d = settings_defaults()
    assert (d["LEARNING_MODE"], d["TOPIC_PARTITIONS"], d["LEARN_SAMPLE_RATE"]) == ("central", 8, 0.1)
    assert d["ALIGN_MAX_SKEW_S"] > 0 and d["MODEL_PROCESS"]
    # the defaults of the three settings the suite pins; the rest are the worker's own defaults
    env = {name: str(d[name.removeprefix("FRAUD_")]) for name in SINGLE_PARTITION}
    env.update({"FRAUD_STATE_KEY": KEY, "FRAUD_EXAMPLES_TOPIC": f"{names.prefix}.examples",
                "FRAUD_SNAPSHOTS_TOPIC": f"{names.prefix}.snapshots"})
    first = make_worker(env, name="first")
    rows_n, half = 3000, 1500
    rows = generate(rows_n, seed=12, fraud_rate=0.02)
    stream = Stream(names, rows)
    stream.transactions(range(half), labelled=lambda i: True)
    scored = scores_by_id(names, half, timeout_s=240)
    assert len(scored) == half, first.log_tail()
    assert {s["partition"] for s in scored.values()} == set(range(8))

    second = make_worker(env, name="second")
    second.wait_assigned(timeout_s=120)
    stream.transactions(range(half, rows_n), labelled=lambda i: True)
    by_id = scores_by_id(names, rows_n, timeout_s=300)
    assert len(by_id) == rows_n, first.log_tail() + second.log_tail()
    assert second.metric("fraud_events_in_total", topic=names.transactions) > 0, second.log_tail()
    learned_at = [int(by_id[f"tx-{i}"]["model_version"].rsplit("@", 1)[1]) for i in range(half, rows_n)]
    assert sum(n > 0 for n in learned_at) > half // 2  # by replicas of the learner's snapshots

    copies = collections.defaultdict(set)
    for example in examples(names, rows_n, timeout_s=60):
        copies[example.transaction_id].add(example.source)
    assert set(copies) == {f"tx-{i}" for i in range(rows_n)}

    def last_snapshot():
        records = read(f"{names.prefix}.snapshots", timeout_s=5, idle_s=1)
        return decode_snapshot(records[-1][1], Signer(KEY)) if records else None

    wait_for(first, lambda: last_snapshot().received == rows_n, 120, "a snapshot of every transaction, once")
    snapshot = last_snapshot()
    assert snapshot.sample_rate == 0.1
    frauds = sum(int(rows[i]["Class"]) for i in range(rows_n))
    assert frauds <= snapshot.learned < frauds + 0.2 * (rows_n - frauds)  # every fraud, about a tenth of the rest
