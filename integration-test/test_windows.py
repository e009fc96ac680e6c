"""Window features through real workers: 4 partitions, 2 workers, the simulator's transactions keyed
by card. Every transaction's model input (its pending entry, read from the pending table's changelog)
equals the single-partition result of the pure driver (:class:`~app.features.stream.StreamFeatures`,
which a one-partition scorer reproduces: tests/scoring/test_windows.py), card and terminal features
alike, the terminals' from labels sent ahead of the transactions that read them."""
from __future__ import annotations

import time

import pytest

from app.data.simulator import CONFIGS, load
from app.features.stream import StreamFeatures
from app.state.pending import decode_pending
from app.testing.kafka import committed_and_end, read
from app.testing.replay import replay
from app.testing.worker import assert_healthy, wait_committed

import settings
from app import configured

DAY = 86_400.0
ENV = {"FRAUD_AGENTS": "scoring", "FRAUD_TOPIC_PARTITIONS": "4", "FRAUD_MODEL_FEATURES": "Amount",
       "FRAUD_MODEL_KIND": "lr", "FRAUD_WINDOW_FEATURES": "1"}


def _wait_for(predicate, timeout_s: float, what: str, workers) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}:\n" + "\n".join(w.log_tail(30) for w in workers))


@pytest.fixture(scope="module")
def days():
    """The small simulator configuration's first 10 days: days 0-6 (labelled) and 7-9 (to score)."""
    rows = []
    start = None
    for row in load(CONFIGS["small"], 0).rows(0, None):
        start = row["event_time"] if start is None else start
        if row["event_time"] >= start + 10 * DAY:
            break
        rows.append(row)
    first = [row for row in rows if row["event_time"] < start + 7 * DAY]
    return first, rows[len(first):]


def test_window_features_across_partitions_and_workers_equal_the_single_partition_ones(make_worker, names, days):
    labelled, scored = days
    workers = [make_worker(ENV, name="w0"), make_worker(ENV, name="w1")]
    for worker in workers:
        worker.wait_assigned()
    # days 0-6 with their labels in the events: each label goes to its terminal's windows
    replay(names, labelled, labels="in-event")
    # every label is in both workers' copies of the terminal table before the later transactions
    # come (a replay runs days of event time in a second: the 7-day delay does not cover the labels'
    # way to the copies): all transactions scored, their labels applied, the changelog read to its end
    wait_committed(workers[0], names.transactions, timeout_s=120)
    wait_committed(workers[0], f"{names.app_id}-terminal-labels", timeout_s=60)
    applied = sum(w.metric("fraud_terminal_labels_total", outcome="applied") for w in workers)
    assert applied >= len(labelled), f"{applied} of {len(labelled)} labels applied to their terminals"
    _, ends = committed_and_end(names.app_id, names.changelog(settings.TERMINAL_WINDOWS_TABLE))
    read_to = lambda: [w.metric("fraud_table_view_read_to", table="terminals") for w in workers]  # noqa: E731
    _wait_for(lambda: read_to() == [sum(ends.values())] * 2, 60,
              f"both copies of the terminal table read to {sum(ends.values())} (they read to {read_to()})", workers)
    terminals = {row["terminal_id"] for row in labelled}
    held = [w.metric("fraud_window_keys", table="terminals", partition="all") for w in workers]
    assert held == [len(terminals)] * 2, f"{len(terminals)} terminals expected in both copies, they hold {held}"
    # days 7-9 without labels: their model input waits in the pending table
    replay(names, scored, labels="none", id_prefix="later")
    pending = names.changelog(settings.PENDING_TABLE)
    entries = read(pending, expect=len(scored), timeout_s=180, idle_s=30)
    for worker in workers:
        assert_healthy(worker)
        assert worker.metric("fraud_window_keys", table="cards") > 0, f"{worker.name} holds no card"
    got = {key.decode(): decode_pending(value).x for key, value, _, _ in entries if value is not None}

    driver = StreamFeatures(configured.transaction_features(settings), raw_names=["Amount"])
    for row in labelled:
        driver.transaction(row)
    for row in labelled:  # every label is in the terminal tables before the later transactions come
        driver.label(row["terminal_id"], row["event_time"], row["Class"])
    expected = {f"later-{i:09d}": driver.transaction(row) for i, row in enumerate(scored)}
    assert len(got) == len(expected)
    mismatched = [key for key in expected if got.get(key) != expected[key]]
    assert not mismatched, (f"{len(mismatched)} of {len(expected)} differ, e.g. {mismatched[0]}: "
                            f"{got.get(mismatched[0])} != {expected[mismatched[0]]}")
    assert sum(x["TERMINAL_ID_RISK_7DAY_WINDOW"] > 0 for x in got.values()) > 10  # terminal windows did count
    assert max(x["CUSTOMER_ID_NB_TX_7DAY_WINDOW"] for x in got.values()) > 5
