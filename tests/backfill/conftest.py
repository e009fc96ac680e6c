"""One local SparkSession (2 cores, 1 GB driver) for every backfill test of the session, and a small
run of the Handbook's simulator with transactions lacking ids or labels mixed in."""
from __future__ import annotations

import csv

import pytest

from app.data.simulator import SimulatorConfig, simulate
from app.records import FEATURE_NAMES


@pytest.fixture(scope="session")
def spark():
    pytest.importorskip("pyspark")
    from app.backfill.session import build_session

    session = build_session("local[2]", app_name="fraud-backfill-tests", driver_memory="1g",
                            extra_conf={"spark.sql.shuffle.partitions": "4"})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def simulator_rows() -> list[dict]:
    """About 3,000 transactions over 50 days; every 53rd without a card id, every 71st without a
    terminal id, every 31st never labelled."""
    sim = simulate(SimulatorConfig(n_customers=80, n_terminals=120, n_days=50), seed=4)
    out = []
    for row in sim.rows():
        i = row["transaction_index"]
        if i % 53 == 0:
            row["card_id"] = ""  # no card: no card features
        if i % 71 == 0:
            row["terminal_id"] = ""  # no terminal: no terminal features
        if i % 31 == 0:
            row["Class"] = None  # never labelled: nothing for its terminal
        out.append(row)
    return out


def transaction_id(row: dict) -> str:
    return f"tx-{row['transaction_index']:09d}"


def write_csv(rows: list[dict], path) -> None:
    """``rows`` (simulator rows) as a CSV the file source reads, in the given order; ``V1..V28`` zero."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["transaction_id", "event_time", *FEATURE_NAMES, "Class", "card_id", "terminal_id"])
        for r in rows:
            w.writerow([transaction_id(r), r["event_time"], *([0.0] * 28), r["Amount"],
                        "" if r["Class"] is None else r["Class"], r["card_id"], r["terminal_id"]])
