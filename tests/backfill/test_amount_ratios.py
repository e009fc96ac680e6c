"""Parity of the card windows' amount ratios: Spark's equal the stream's
(:class:`app.features.StreamFeatures`) to 1e-9 on the Handbook's simulator, cards without ids mixed in."""
from __future__ import annotations

from app.backfill.features import transaction_feature_columns
from app.data.simulator import SimulatorConfig
from app.features import TransactionFeatures
from tests.backfill.conftest import differing, simulated, spark_features, stream_features

DELAY = 7 * 86_400


def test_spark_amount_ratios_equal_the_stream_driver(frame_of):
    rows = simulated(SimulatorConfig(n_customers=40, n_terminals=60, n_days=40), seed=9, no_card_every=37)
    tf = TransactionFeatures(amount_ratios=True)
    expected = stream_features(rows, tf, DELAY)
    got = spark_features(frame_of(rows), tf, DELAY)
    names = transaction_feature_columns(tf)
    ratios = [n for n in names if n.startswith("CUSTOMER_ID_AMOUNT_OVER_AVG_")]
    assert len(ratios) == 3 and set(got) == set(expected)
    mismatches = differing(expected, got, names)
    assert not mismatches, mismatches[:5]
    # the ratios vary (not a constant 1) and are absent without a card id
    assert len({round(x["CUSTOMER_ID_AMOUNT_OVER_AVG_30DAY_WINDOW"], 6) for x in expected.values()
                if "CUSTOMER_ID_AMOUNT_OVER_AVG_30DAY_WINDOW" in x}) > 100
    assert sum(got[t]["CUSTOMER_ID_AMOUNT_OVER_AVG_1DAY_WINDOW"] is None for t in got) == sum(r["card_id"] == "" for r in rows)
