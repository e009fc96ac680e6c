"""Parity: Spark's model window features equal the stream's (:class:`app.features.StreamFeatures`
over the rows in event-time order, labels received 7 days after their transaction) to 1e-9, on the
Handbook's simulator, with transactions lacking ids or labels mixed in."""
from __future__ import annotations

import math

from app.backfill.features import transaction_feature_columns
from app.features import StreamFeatures, TransactionFeatures
from tests.backfill.conftest import differing, spark_features, stream_features

DELAY = 7 * 86_400


def test_spark_equals_the_stream_driver(simulator_rows, frame_of):
    rows = simulator_rows
    tf = TransactionFeatures()
    expected = stream_features(rows, tf, DELAY)
    got = spark_features(frame_of(rows), tf, DELAY)
    assert set(got) == set(expected)
    mismatches = differing(expected, got, transaction_feature_columns(tf))
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


def test_warm_start_learns_the_stream_features_and_records_them(simulator_rows, frame_of):
    import settings
    from app import configured
    from app.backfill.warm_start import warm_start

    rows = simulator_rows
    learner, stats = warm_start(frame_of(rows), learner=Recorder(), window_features=True, label_delay=DELAY)
    tf = configured.transaction_features(settings)  # the settings' windows, as the worker serves them
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
