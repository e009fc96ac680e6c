"""Parity: Spark's model window features equal the stream's (:class:`app.features.StreamFeatures`
over the rows in event-time order, labels received 7 days after their transaction) to 1e-9, on the
Handbook's simulator, with transactions lacking ids or labels mixed in."""
from __future__ import annotations

import math

from app.backfill.features import transaction_feature_columns, transaction_features
from app.backfill.sources import read_files
from app.features import StreamFeatures, TransactionFeatures
from tests.backfill.conftest import transaction_id, write_csv

DELAY = 7 * 86_400


def test_spark_equals_the_stream_driver(spark, simulator_rows, tmp_path):
    rows = simulator_rows
    tf = TransactionFeatures()
    expected = {transaction_id(row): x for row, x in StreamFeatures(tf).run(rows, label_delay=DELAY)}
    path = tmp_path / "sim.csv"
    write_csv(rows, path)
    got = {r["transaction_id"]: r.asDict() for r in transaction_features(read_files(spark, path), features=tf,
                                                                           label_delay=DELAY).collect()}
    assert set(got) == set(expected)
    names = transaction_feature_columns(tf)
    mismatches = []
    for tid, x in expected.items():
        for name in names:
            want, have = x.get(name), got[tid][name]
            if want is None or have is None:
                if want is not have:
                    mismatches.append((tid, name, want, have))
            elif not math.isclose(have, want, rel_tol=1e-12, abs_tol=1e-9):
                mismatches.append((tid, name, want, have))
    assert not mismatches, mismatches[:5]
    # the data exercises every kind: terminals with frauds in their windows, rows without ids
    assert max(x.get("TERMINAL_ID_RISK_7DAY_WINDOW", 0.0) for x in expected.values()) > 0
    assert max(x.get("CUSTOMER_ID_NB_TX_30DAY_WINDOW", 0.0) for x in expected.values()) >= 30
    assert sum(got[t]["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] is None for t in got) == sum(r["card_id"] == "" for r in rows)


class Recorder:
    """A learner that keeps what it is taught."""

    def __init__(self):
        self.meta, self.seen = {}, []

    def learn(self, x, y):
        self.seen.append((x, y))


def test_warm_start_learns_the_stream_features_and_records_them(spark, simulator_rows, tmp_path):
    import settings
    from app.backfill.warm_start import warm_start

    rows = simulator_rows
    path = tmp_path / "sim.csv"
    write_csv(rows, path)
    frame = read_files(spark, path)
    learner, stats = warm_start(frame, learner=Recorder(), window_features=True, label_delay=DELAY)
    tf = TransactionFeatures()
    expected = [(x, row["Class"]) for row, x in StreamFeatures(tf, settings.MODEL_FEATURES).run(
        [{**r, **{f"V{i}": 0.0 for i in range(1, 29)}} for r in rows], label_delay=DELAY) if row["Class"] is not None]
    assert stats.rows == len(expected) == len(learner.seen)
    for (want, y), (have, got_y) in zip(expected, learner.seen):
        assert got_y == y and list(have) == list(want)
        assert all(math.isclose(have[k], want[k], rel_tol=1e-12, abs_tol=1e-9) for k in want)
    meta = learner.meta["model_input"]
    assert meta["window_features"] == list(tf.names) and meta["raw"] == list(settings.MODEL_FEATURES)
    assert TransactionFeatures(**meta["window_params"]).names == tf.names and meta["label_delay_s"] == DELAY
    assert learner.meta["warm_start"]["window_features"] is True
