"""What the backfill tests share: one local SparkSession (2 cores, 1 GB driver) for the whole
session; runs of the Handbook's simulator with transactions lacking ids or labels mixed in; those
rows as the file source reads them (a CSV file); and the comparison of Spark's window features with
the stream's (:class:`app.features.StreamFeatures`)."""
from __future__ import annotations

import csv
import math

import pytest

from app.data.simulator import SimulatorConfig, simulate
from app.features import StreamFeatures, TransactionFeatures
from app.records import FEATURE_NAMES


@pytest.fixture(scope="session")
def spark():
    pytest.importorskip("pyspark")
    from app.backfill.session import build_session

    session = build_session("local[2]", app_name="fraud-backfill-tests", driver_memory="1g",
                            extra_conf={"spark.sql.shuffle.partitions": "4"})
    yield session
    session.stop()


def simulated(config: SimulatorConfig, seed: int, *, no_card_every: int | None = None,
              no_terminal_every: int | None = None, unlabelled_every: int | None = None) -> list[dict]:
    """The rows of a simulator run; by transaction index, every ``no_card_every``-th without a card
    id (no card features), every ``no_terminal_every``-th without a terminal id (no terminal
    features), every ``unlabelled_every``-th never labelled (nothing for its terminal)."""
    out = []
    for row in simulate(config, seed=seed).rows():
        i = row["transaction_index"]
        if no_card_every and i % no_card_every == 0:
            row["card_id"] = ""
        if no_terminal_every and i % no_terminal_every == 0:
            row["terminal_id"] = ""
        if unlabelled_every and i % unlabelled_every == 0:
            row["Class"] = None
        out.append(row)
    return out


@pytest.fixture(scope="session")
def simulator_rows() -> list[dict]:
    """About 3,000 transactions over 50 days; every 53rd without a card id, every 71st without a
    terminal id, every 31st never labelled."""
    return simulated(SimulatorConfig(n_customers=80, n_terminals=120, n_days=50), seed=4,
                     no_card_every=53, no_terminal_every=71, unlabelled_every=31)


@pytest.fixture
def frame_of(spark, tmp_path):
    """``frame_of(rows)``: simulator rows, written in the given order to a CSV file of the test's
    (:func:`write_csv`), as :func:`app.backfill.sources.read_files` reads them."""
    from app.backfill.sources import read_files

    def frame(rows: list[dict]):
        path = tmp_path / "sim.csv"
        write_csv(rows, path)
        return read_files(spark, path)
    return frame


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


def stream_features(rows: list[dict], features: TransactionFeatures, label_delay: float) -> dict[str, dict]:
    """The window features the stream computes for each of ``rows`` (taken in the given order, each
    label received ``label_delay`` after its transaction), by transaction id."""
    return {transaction_id(row): x for row, x in StreamFeatures(features).run(rows, label_delay=label_delay)}


def spark_features(frame, features: TransactionFeatures, label_delay: float) -> dict[str, dict]:
    """Spark's :func:`~app.backfill.features.transaction_features` of ``frame``, each row as a dict,
    by transaction id."""
    from app.backfill.features import transaction_features

    return {r["transaction_id"]: r.asDict()
            for r in transaction_features(frame, features=features, label_delay=label_delay).collect()}


def differing(expected: dict[str, dict], got: dict[str, dict], names: list[str]) -> list[tuple]:
    """The (id, feature, expected, got) that differ beyond 1e-9 (None where the stream leaves one out)."""
    out = []
    for tid, x in expected.items():
        for name in names:
            want, have = x.get(name), got[tid][name]
            if want is None or have is None:
                if want is not have:
                    out.append((tid, name, want, have))
            elif not math.isclose(have, want, rel_tol=1e-12, abs_tol=1e-9):
                out.append((tid, name, want, have))
    return out
