"""The Spark jobs take the card windows' amount ratios as ``CARD_AMOUNT_RATIOS`` says, as the worker
does: the ``features`` job's columns (equal to the stream's) and the warm start's training set."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest

import settings
from app import configured
from app.backfill.jobs import run_features
from app.backfill.sources import read_files
from app.backfill.warm_start import training_selection
from app.features import StreamFeatures
from tests.backfill.conftest import transaction_id, write_csv

DELAY = 7 * 86_400
RATIOS = [f"CUSTOMER_ID_AMOUNT_OVER_AVG_{k}DAY_WINDOW" for k in (1, 7, 30)]


@pytest.mark.parametrize("ratios", [True, False])
def test_the_features_job_and_the_warm_start_follow_the_setting(spark, simulator_rows, tmp_path, monkeypatch, ratios):
    monkeypatch.setattr(settings, "CARD_AMOUNT_RATIOS", ratios)
    rows = simulator_rows[:1500]
    path = tmp_path / "sim.csv"
    write_csv(rows, path)
    run_features(spark, str(path), str(tmp_path / "features"), label_delay=DELAY)
    table = {r["transaction_id"]: r for r in pq.read_table(tmp_path / "features").to_pylist()}
    names = list(configured.transaction_features(settings).names)
    columns = list(next(iter(table.values())))
    assert columns[-len(names):] == names
    assert [c for c in columns if "OVER_AVG" in c] == (RATIOS if ratios else [])
    if ratios:
        expected = {transaction_id(row): x for row, x in
                    StreamFeatures(configured.transaction_features(settings)).run(rows, label_delay=DELAY)}
        assert set(table) == set(expected)
        for tid, x in expected.items():
            for name in RATIOS:
                if name in x:
                    assert table[tid][name] == pytest.approx(x[name], rel=1e-12, abs=1e-9), (tid, name)
                else:
                    assert table[tid][name] is None, (tid, name)  # no card id: no ratios
        assert sum(table[t][RATIOS[0]] is None for t in table) == sum(r["card_id"] == "" for r in rows) > 0
    selected = training_selection(read_files(spark, path), window_features=True, label_delay=DELAY)
    try:
        assert [c for c in selected.columns if "OVER_AVG" in c] == (RATIOS if ratios else [])
    finally:
        selected.unpersist()
