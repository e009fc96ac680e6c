"""Tests for the seeded synthetic transaction generator (app.data.synthetic)."""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import pytest

from app.data import CSV_COLUMNS, ID_COLUMNS, iter_rows, write_csv
from app.data.synthetic import CONCEPTS, generate


def col(rows: list[dict], name: str) -> np.ndarray:
    return np.array([r[name] for r in rows])


@pytest.fixture(scope="module")
def big() -> list[dict]:
    return generate(50_000, seed=11)


def test_deterministic_per_seed() -> None:
    assert generate(3000, seed=5, velocity_fraud=True) == generate(3000, seed=5, velocity_fraud=True)
    assert generate(3000, seed=5) != generate(3000, seed=6)


def test_columns_and_ids() -> None:
    rows = generate(500, seed=2, n_cards=50, n_merchants=7)
    assert all(list(r) == CSV_COLUMNS + ID_COLUMNS for r in rows)
    assert all(re.fullmatch(r"card-\d{6}", r["card_id"]) for r in rows)
    assert all(re.fullmatch(r"m-\d{4}", r["merchant_id"]) for r in rows)
    assert len({r["card_id"] for r in rows}) <= 50 and len({r["merchant_id"] for r in rows}) <= 7
    assert all(isinstance(r["Class"], int) and isinstance(r["V1"], float) for r in rows)
    assert [list(r) for r in generate(10, include_ids=False)] == [CSV_COLUMNS] * 10
    assert generate(0) == []


def test_fraud_rate_roughly_right(big: list[dict]) -> None:
    assert set(col(big, "Class")) == {0, 1}
    assert 0.0010 < col(big, "Class").mean() < 0.0025
    vel = col(generate(50_000, seed=11, velocity_fraud=True), "Class").mean()
    assert 0.0010 < vel < 0.0025
    assert 0.04 < col(generate(20_000, seed=1, fraud_rate=0.05), "Class").mean() < 0.06


def test_time_monotonic_and_gaps(big: list[dict]) -> None:
    t = col(big, "Time")
    assert t[0] == 0.0 and np.all(np.diff(t) >= 0)
    assert np.diff(t).mean() == pytest.approx(0.6, rel=0.05)
    t2 = col(generate(1000, seed=1, start_time=1000.0, mean_gap_s=2.0, velocity_fraud=True), "Time")
    assert t2[0] == 1000.0 and np.all(np.diff(t2) >= 0)


def test_fraud_signature_is_learnable(big: list[dict]) -> None:
    y = col(big, "Class") == 1
    for name, shift in CONCEPTS[0].signature.items():
        assert np.sign(col(big, name)[y].mean()) == np.sign(shift)
        assert abs(col(big, name)[y].mean()) > 1.0 and abs(col(big, name)[~y].mean()) < 0.05
    amount = col(big, "Amount")
    assert np.median(amount[~y]) == pytest.approx(20, rel=0.1)
    assert np.median(amount[y]) > 3 * np.median(amount[~y])


def test_abrupt_drift_changes_distribution_after_index() -> None:
    d = 10_000
    rows = generate(20_000, seed=4, fraud_rate=0.03, drift_at=[d])
    same = generate(20_000, seed=4, fraud_rate=0.03)
    assert rows[:d] == same[:d]  # nothing changes before the drift index
    y, amount = col(rows, "Class") == 1, col(rows, "Amount")
    before, after = np.arange(20_000) < d, np.arange(20_000) >= d
    old, new = CONCEPTS[0], CONCEPTS[1]
    assert col(rows, "V14")[y & before].mean() < -1.0
    assert abs(col(rows, "V14")[y & after].mean()) < 0.3  # old signature gone...
    assert col(rows, "V4")[y & after].mean() > 1.0  # ...moved to other columns
    assert abs(col(rows, "V4")[y & before].mean()) < 0.3
    assert np.median(amount[~y & before]) == pytest.approx(old.legit_amount_median, rel=0.1)
    assert np.median(amount[~y & after]) == pytest.approx(new.legit_amount_median, rel=0.1)
    assert np.median(amount[y & after]) < np.median(amount[y & before]) / 3


def test_gradual_drift_mixes_over_window() -> None:
    d, w = 5000, 2000
    rows = generate(12_000, seed=9, drift_at=[d], drift_kind="gradual", drift_window=w)
    legit = col(rows, "Class") == 0
    log_amount = np.log(np.maximum(col(rows, "Amount"), 0.01))
    idx = np.arange(len(rows))

    def median(lo: int, hi: int) -> float:
        return float(np.exp(np.median(log_amount[legit & (idx >= lo) & (idx < hi)])))

    assert median(0, d) == pytest.approx(20, rel=0.1)
    assert 20 * 1.1 < median(d + w // 4, d + 3 * w // 4) < 45 / 1.1  # a mixture
    assert median(d + w, len(rows)) == pytest.approx(45, rel=0.1)


def test_multiple_drifts_cycle_concepts() -> None:
    rows = generate(9000, seed=3, fraud_rate=0.05, drift_at=[6000, 3000])  # order does not matter
    y = col(rows, "Class") == 1
    v9 = col(rows, "V9")
    assert v9[y][: sum(y[:6000])].mean() > -0.5 and v9[6000:][y[6000:]].mean() < -1.0


def clusters(times: list[float], max_gap: float) -> list[list[float]]:
    """Split sorted times into runs whose consecutive gaps are <= max_gap."""
    runs: list[list[float]] = []
    for t in times:
        if runs and t - runs[-1][-1] <= max_gap:
            runs[-1].append(t)
        else:
            runs.append([t])
    return runs


def test_velocity_bursts_cluster_within_seconds() -> None:
    rows = generate(50_000, seed=3, velocity_fraud=True)
    by_card: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_card[r["card_id"]].append(r)
    bursts, burst_v14 = [], []
    for txns in by_card.values():
        fraud = [r for r in txns if r["Class"] == 1]
        for run in clusters([r["Time"] for r in fraud], max_gap=5.0 + 1e-6):
            if len(run) >= 5:
                bursts.append(run)
                burst_v14 += [r["V14"] for r in fraud if run[0] <= r["Time"] <= run[-1]]
    # round(50_000 * 0.0017 * 0.5 / 7.5) == 6 bursts of 5..10 rows, each spanning < 45 s
    assert len(bursts) == 6
    assert all(5 <= len(b) <= 10 and b[-1] - b[0] < 45 for b in bursts)
    assert abs(np.mean(burst_v14)) < 0.5  # burst rows carry no V signature
    # legit cards never make 5 transactions within 45 s; their median gap is minutes
    for txns in by_card.values():
        legit = [r["Time"] for r in txns if r["Class"] == 0]
        if legit:  # most legit transactions within any 45 s window of one card
            t = np.array(legit)
            assert (np.searchsorted(t, t + 45.0, side="right") - np.arange(len(t))).max() < 5
    gaps = np.concatenate([np.diff([r["Time"] for r in t if r["Class"] == 0]) for t in by_card.values()])
    assert np.median(gaps) > 120


def test_write_csv_roundtrip(tmp_path) -> None:
    rows = generate(200, seed=8, velocity_fraud=True, fraud_rate=0.2)
    path = tmp_path / "synth.csv"
    assert write_csv(rows, path) == 200
    assert list(iter_rows(path)) == rows


@pytest.mark.parametrize("kwargs", [{"n": -1}, {"drift_kind": "nope"}, {"fraud_rate": 2.0},
                                    {"drift_at": [-5]}, {"n_cards": 0}])
def test_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        generate(**{"n": 10, **kwargs})
