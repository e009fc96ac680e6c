"""Parity of the card windows' amount ratios: Spark's equal the stream's
(:class:`app.features.StreamFeatures`) to 1e-9 on the Handbook's simulator, cards without ids mixed in."""
from __future__ import annotations

import csv
import math

from app.backfill.features import transaction_feature_columns, transaction_features
from app.backfill.sources import read_files
from app.data.simulator import SimulatorConfig, simulate
from app.features import StreamFeatures, TransactionFeatures
from app.records import FEATURE_NAMES

DELAY = 7 * 86_400


def test_spark_amount_ratios_equal_the_stream_driver(spark, tmp_path):
    rows = []
    for row in simulate(SimulatorConfig(n_customers=40, n_terminals=60, n_days=40), seed=9).rows():
        if row["transaction_index"] % 37 == 0:
            row["card_id"] = ""  # no card: no card features, no ratios
        rows.append(row)
    tf = TransactionFeatures(amount_ratios=True)
    expected = {f"tx-{row['transaction_index']:09d}": x for row, x in StreamFeatures(tf).run(rows, label_delay=DELAY)}
    path = tmp_path / "sim.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["transaction_id", "event_time", *FEATURE_NAMES, "Class", "card_id", "terminal_id"])
        for r in rows:
            w.writerow([f"tx-{r['transaction_index']:09d}", r["event_time"], *([0.0] * 28), r["Amount"], r["Class"],
                        r["card_id"], r["terminal_id"]])
    got = {r["transaction_id"]: r.asDict() for r in transaction_features(read_files(spark, path), features=tf,
                                                                           label_delay=DELAY).collect()}
    names = transaction_feature_columns(tf)
    ratios = [n for n in names if n.startswith("CUSTOMER_ID_AMOUNT_OVER_AVG_")]
    assert len(ratios) == 3 and set(got) == set(expected)
    mismatches = [(tid, name, x.get(name), got[tid][name]) for tid, x in expected.items() for name in names
                  if (x.get(name) is None) != (got[tid][name] is None)
                  or (x.get(name) is not None and not math.isclose(got[tid][name], x[name], rel_tol=1e-12, abs_tol=1e-9))]
    assert not mismatches, mismatches[:5]
    # the ratios vary (not a constant 1) and are absent without a card id
    assert len({round(x["CUSTOMER_ID_AMOUNT_OVER_AVG_30DAY_WINDOW"], 6) for x in expected.values()
                if "CUSTOMER_ID_AMOUNT_OVER_AVG_30DAY_WINDOW" in x}) > 100
    assert sum(got[t]["CUSTOMER_ID_AMOUNT_OVER_AVG_1DAY_WINDOW"] is None for t in got) == sum(r["card_id"] == "" for r in rows)
