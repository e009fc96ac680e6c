"""The ``features`` job: each transaction of a source with the model's window features the scorer
computes for it (:class:`app.features.StreamFeatures` over the rows in event-time order, labels
received ``label_delay`` after them), written to Parquet in event-time order, the source read in
another order."""
from __future__ import annotations

import random

import pyarrow.parquet as pq
import pytest

import settings
from app import configured
from app.backfill.jobs import run_features
from app.backfill.sources import COLUMNS
from tests.backfill.conftest import differing, stream_features, transaction_id, write_csv

DELAY = 10 * 86_400  # longer than TERMINAL_DELAY_S: some labels of a terminal's windows are not yet received


def test_the_job_writes_the_stream_features_in_event_time_order(spark, simulator_rows, tmp_path):
    shuffled = list(simulator_rows)
    random.Random(2).shuffle(shuffled)  # the file is not in event-time order: the job sorts
    path = tmp_path / "shuffled.csv"
    write_csv(shuffled, path)
    result = run_features(spark, str(path), str(tmp_path / "features"), label_delay=DELAY)
    assert result["rows"] == len(shuffled) and result["label_delay_s"] == DELAY and result["schema_id"] is None

    table = pq.read_table(tmp_path / "features").to_pylist()
    tf = configured.transaction_features(settings)
    names = list(tf.names)
    assert list(table[0]) == [*COLUMNS, *names]
    # ties in event time are broken by the position in the file, as the job's order does
    in_order = sorted(enumerate(shuffled), key=lambda item: (item[1]["event_time"], item[0]))
    assert [r["transaction_id"] for r in table] == [transaction_id(row) for _, row in in_order]
    expected = stream_features([row for _, row in in_order], tf, DELAY)
    got = {r["transaction_id"]: r for r in table}
    assert set(got) == set(expected)
    bad = differing(expected, got, names)
    assert not bad, bad[:5]
    # the label delay is the job's: with the default 7 days some terminal figures differ
    assert differing(stream_features([row for _, row in in_order], tf, 7 * 86_400), got, names)
    assert sum(got[transaction_id(r)]["TERMINAL_ID_NB_TX_1DAY_WINDOW"] is None for r in shuffled) == \
        sum(r["terminal_id"] == "" for r in shuffled) > 0


def test_the_job_needs_somewhere_to_write(spark):
    with pytest.raises(ValueError, match="output folder"):
        run_features(spark, "unused.csv", None)
