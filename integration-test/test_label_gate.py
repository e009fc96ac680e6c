"""A replay faster than the service, its labels held until the service has scored the transaction
that made them due (``labels_after_scores``, :mod:`app.label_gate`): a real worker learns every
label, none before its transaction is scored and none less than the labels' delay after its
transaction in event time (``fraud_label_delay_seconds``), none so late that it expired."""
from __future__ import annotations

import time

from app.data.simulator import CONFIGS, load
from app.testing.replay import replay

DAY = 86_400.0
DELAY_DAYS = 2.0
# the simulator's event times are whole seconds: half a second more keeps every label's delay off the
# bucket bound of DELAY_DAYS (a transaction exactly that much later would make it equal to it)
DELAY_S = DELAY_DAYS * DAY + 0.5
ENV = {"FRAUD_AGENTS": "scoring", "FRAUD_MODEL_FEATURES": "Amount", "FRAUD_MODEL_KIND": "lr",
       "FRAUD_WINDOW_FEATURES": "1"}


def first_days(days: float) -> list[dict]:
    rows, start = [], None
    for row in load(CONFIGS["small"], 0).rows(0, None):
        start = row["event_time"] if start is None else start
        if row["event_time"] >= start + days * DAY:
            break
        rows.append(row)
    return rows


def test_every_label_is_learned_after_its_delay_and_its_transactions_score(make_worker, names):
    rows = first_days(6.0)
    worker = make_worker(ENV)
    sent = replay(names, rows, labels="delayed", label_delay_event_s=DELAY_S,
                  labels_after_scores=names.scores, scores_lead=300)
    assert (sent.transactions, sent.labels) == (len(rows), len(rows))

    deadline = time.monotonic() + 60
    while worker.metric("fraud_labels_total") < len(rows) and time.monotonic() < deadline:
        time.sleep(0.5)
    outcomes = {o: worker.metric("fraud_labels_total", outcome=o) for o in ("learned", "parked", "expired", "unknown")}
    assert outcomes == {"learned": len(rows), "parked": 0, "expired": 0, "unknown": 0}, worker.log_tail(30)
    assert worker.metric("fraud_label_delay_seconds_count") == len(rows)
    # learned once a transaction DELAY_DAYS later had been scored, never earlier in event time; only the
    # labels whose delay ends after the last transaction go out at the end and come out shorter
    last = rows[-1]["event_time"]
    at_end = sum(1 for row in rows if row["event_time"] > last - DELAY_S)
    assert 0 < at_end < len(rows)
    assert worker.metric("fraud_label_delay_seconds_bucket", le=repr(DELAY_DAYS * DAY)) == at_end
    # and soon after: the replay kept at most 300 transactions (a third of a day here) ahead of the scores
    assert worker.metric("fraud_label_delay_seconds_bucket", le=repr(3 * DAY)) == len(rows)
