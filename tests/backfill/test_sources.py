"""Files as history: ids and event times as the replay producer makes them, a dense row index."""
from __future__ import annotations

from app.backfill.sources import COLUMNS, read_files, with_row_index
from app.data.synthetic import generate, write_csv


def test_row_index_is_dense_and_in_order_across_partitions(spark):
    frame = spark.range(0, 1000, 1, numPartitions=4)
    rows = with_row_index(frame, "index").collect()
    assert [r["index"] for r in rows] == [r["id"] for r in rows] == list(range(1000))


def test_csv_rows_become_transactions(spark, tmp_path):
    rows = generate(50, seed=2)
    write_csv(rows, tmp_path / "rows.csv")
    got = read_files(spark, tmp_path / "rows.csv", time_base=1000.0, id_prefix="h", limit=40).collect()
    assert list(got[0].asDict()) == COLUMNS
    assert [r["transaction_id"] for r in got] == [f"h-{i:09d}" for i in range(40)]
    assert [r["event_time"] for r in got] == [1000.0 + r["Time"] for r in rows[:40]]
    assert [(r["card_id"], r["Class"], r["Amount"]) for r in got] == [(r["card_id"], r["Class"], r["Amount"])
                                                                      for r in rows[:40]]
