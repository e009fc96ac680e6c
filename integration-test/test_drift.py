"""Drift alerts on the real broker match what the offline harness measured for the same stream."""
from __future__ import annotations

import settings
from app.data.synthetic import generate
from app.drift import ChallengerSlot
from app.records import DriftAlert
from app.state.checkpointed import open_envelope
from app.testing.kafka import read
from app.testing.replay import replay
from app.testing.worker import wait_committed
from evaluation.drift import monitor_values

N = 8000
CHANGE = 4000
SENTINEL = 1500  # rows with 20x amounts after a stationary stream: their alert proves all was consumed
# Amount alone (its alerts are the ones compared), with the default transform, delta and clock
ENV = {"FRAUD_AGENTS": "drift", "FRAUD_DRIFT_FEATURES": "Amount",
       "FRAUD_DRIFT_FEATURE_TRANSFORM": settings.DRIFT_FEATURE_TRANSFORM,
       "FRAUD_DRIFT_DELTA": str(settings.DRIFT_DELTA), "FRAUD_DRIFT_CLOCK": str(settings.DRIFT_CLOCK)}


def offline(rows, change_points):
    score, detections = monitor_values([r["Amount"] for r in rows], change_points, tolerance=2000,
                                       delta=settings.DRIFT_DELTA, clock=settings.DRIFT_CLOCK,
                                       transform=settings.DRIFT_FEATURE_TRANSFORM)
    return score, [d.position for d in detections]


def amount_alerts(names, expect):
    got = read(names.drift_alerts, DriftAlert, expect=expect, timeout_s=90, idle_s=5)
    return [v for _, v, _, _ in got if v["stream"] == "feature:Amount"]


def test_abrupt_drift_alert_within_the_offline_delay(make_worker, names):
    rows = generate(N, seed=11, drift_at=[CHANGE])  # the new concept moves the legit Amount median 20 -> 45
    score, positions = offline(rows, [CHANGE])
    assert score.true_alarms == 1, "the harness must see this drift"
    delay = score.delays[0]

    worker = make_worker(ENV)
    replay(names, rows, keep_ids=True)
    alerts = amount_alerts(names, expect=len(positions))
    assert [a["position"] for a in alerts] == positions, worker.log_tail()
    first = alerts[0]
    assert 0 < first["position"] - CHANGE <= delay
    assert first["offset"] == first["position"] - 1 and first["partition"] == 0  # one partition: offset = index
    assert first["mean_after"] > first["mean_before"] and first["mitigation"] == "none"
    assert first["detector"].startswith(f"ADWIN(delta={settings.DRIFT_DELTA:g}")
    assert worker.metric("fraud_drift_alerts_total", stream="feature:Amount") == len(alerts)


def test_stationary_stream_of_the_same_length_alerts_as_predicted(make_worker, names):
    rows = generate(N + SENTINEL, seed=11)
    for row in rows[N:]:
        row["Amount"] = round(row["Amount"] * 20, 2)
    score, positions = offline(rows, [N])
    predicted_stationary = [p for p in positions if p <= N]
    assert score.true_alarms == 1  # the sentinel

    worker = make_worker(ENV)
    replay(names, rows)
    alerts = amount_alerts(names, expect=len(positions))
    got = [a["position"] for a in alerts]
    assert got == positions, worker.log_tail()
    assert [p for p in got if p <= N] == predicted_stationary  # none at delta 0.002 (the harness says so)
    assert any(p > N for p in got)  # the sentinel arrived: the stationary part was fully consumed


def test_a_restarted_worker_goes_on_with_the_checkpointed_windows(make_worker, names):
    """A clean stop checkpoints the ADWIN windows; the next worker restores them, so the drift is
    found at the position an uninterrupted run finds it (a fresh window would count from the restart
    and need thousands of values again)."""
    rows = generate(N, seed=11, drift_at=[CHANGE])
    _, positions = offline(rows, [CHANGE])
    first = make_worker(ENV, name="first")
    replay(names, rows[:3000], keep_ids=True)
    wait_committed(first, names.transactions)
    first.stop()  # clean: the monitors are checkpointed
    assert "checkpointed the drift monitors on shutdown" in first.log_text(), first.log_tail()

    second = make_worker(ENV, name="second")
    replay(names, rows[3000:], keep_ids=True, start_index=3000)
    alerts = amount_alerts(names, expect=len(positions))
    assert "restored DriftMonitor" in second.log_text(), second.log_tail()
    assert [a["position"] for a in alerts] == positions, second.log_tail()
    assert second.metric("fraud_drift_checkpoints_total") == 0  # none due yet: 8,000 values < 40,000


def test_after_a_kill_the_restored_windows_catch_up_on_what_was_committed_since(make_worker, names):
    """kill -9 after a commit of all consumed: the last checkpoint (every 1,000 values, at the end of
    a batch of at most 200) is 100-500 values behind; the next worker reads those back and feeds them
    to the restored monitor, so the drift is found at the uninterrupted run's position."""
    rows = generate(N, seed=11, drift_at=[CHANGE])
    _, positions = offline(rows, [CHANGE])
    env = {**ENV, "FRAUD_DRIFT_CHECKPOINT_EVERY_VALUES": "1000"}
    first = make_worker(env, name="first")
    replay(names, rows[:2500], keep_ids=True)
    wait_committed(first, names.transactions)
    first.kill()
    changelog = f"{names.app_id}-{settings.DRIFT_CHECKPOINT_TABLE}-changelog"
    last = {k: v for k, v, _, _ in read(changelog, None, timeout_s=30, idle_s=3) if v is not None}
    position, _ = open_envelope(last[b"features:0"])
    assert 1999 <= position < 2400  # offsets are row indexes (one partition)

    second = make_worker(env, name="second", start=False).start(timeout_s=150)  # the dead member's session ends first
    replay(names, rows[2500:], keep_ids=True, start_index=2500)
    alerts = amount_alerts(names, expect=len(positions))
    assert f"the features drift monitor caught up on {2499 - position} events" in second.log_text(), second.log_tail()
    assert second.metric("fraud_caught_up_events_total", state="drift-features") == 2499 - position
    assert [a["position"] for a in alerts] == positions, second.log_tail()


def gradual_concept_change(n: int, start: int = 500, length: int = 3000) -> list[dict]:
    """Synthetic transactions labelled by the sign of V1, a growing share of them flipped from
    ``start`` on (all after ``start + length``): the error stream of a learning model rises slowly,
    so that the warning detector fires before the drift detector (an abrupt change trips both)."""
    import random

    rows = generate(n, seed=11)
    for i, row in enumerate(rows):
        flipped = random.Random(i).random() < min(1.0, max(0.0, (i - start) / length))
        row["Class"] = int((row["V1"] > 0) != flipped)
    return rows


def test_after_a_kill_the_running_challenger_is_restored_and_learns_every_label_once(make_worker, names):
    """The challenger mitigation with a scoring worker: a warning on the error stream starts a
    challenger (alarms mitigate nothing here, so that it keeps running); 1,000 more transactions (one
    more if the last checkpoint fell on the last of them), then kill -9 after their commit; the next
    worker restores the challenger from its last checkpoint (every 500 changes), reads back the
    transactions committed after it, and ends having learned each labelled transaction since its
    start once."""
    n = 4000
    rows = gradual_concept_change(n)
    env = {"FRAUD_AGENTS": "scoring,drift", "FRAUD_MODEL_KIND": "lr", "FRAUD_DRIFT_FEATURES": "",
           "FRAUD_DRIFT_MITIGATION": "challenger", "FRAUD_DRIFT_MITIGATE_ON": "",
           "FRAUD_DRIFT_CHALLENGER_CHECKPOINT_EVERY": "500",
           "FRAUD_DRIFT_SETTLE_EVENTS": "0"}  # the error stream watched from the first label: a warning comes soon
    first = make_worker(env, name="first")
    # the challenger learns the transactions that reach the drift agent after the warning, which
    # comes from the scores: those of the first 1,500 transactions are all in before it starts (the
    # scoring agent hands each batch's scores to the drift monitors before it acknowledges the batch)
    replay(names, rows[:1500], keep_ids=True)
    wait_committed(first, names.transactions)
    assert first.metric("fraud_agent_events_total", agent="drift-scores") == 1500
    assert "challenger started" in first.log_text(), first.log_tail()
    replay(names, rows[1500:2500], keep_ids=True, start_index=1500)
    wait_committed(first, names.transactions)
    changelog = f"{names.app_id}-{settings.DRIFT_CHECKPOINT_TABLE}-changelog"

    def last_checkpoint() -> tuple[int, bytes]:
        last = {k: v for k, v, _, _ in read(changelog, None, timeout_s=30, idle_s=3) if v is not None}
        return open_envelope(last[b"challenger:0"])

    sent = 2500
    if last_checkpoint()[0] == sent - 1:
        # the checkpoint is taken after a batch, and a batch ended on the last transaction with the
        # 500th change in it: one transaction more, which the next checkpoint (500 changes on) will not cover
        replay(names, rows[sent:sent + 1], keep_ids=True, start_index=sent)
        sent += 1
        wait_committed(first, names.transactions)
    first.kill()
    position, blob = last_checkpoint()
    checkpointed = ChallengerSlot.from_checkpoint(blob)
    assert checkpointed.learner is not None and checkpointed.events > 0
    assert position < sent - 1, "no transaction to read back: the last checkpoint fell on the last one"

    second = make_worker(env, name="second", start=False).start(timeout_s=150)  # the dead member's session ends first
    replay(names, rows[sent:], keep_ids=True, start_index=sent)
    wait_committed(second, names.transactions)
    text = second.log_text()
    assert f"restored ChallengerSlot({checkpointed.events} events learned)" in text, second.log_tail()
    assert f"the drift challenger caught up on {sent - 1 - position} events" in text, second.log_tail()
    assert second.metric("fraud_caught_up_events_total", state="drift-challenger") == sent - 1 - position
    # every row is labelled: those after the checkpoint's position once each, none of those before again
    assert second.metric("fraud_drift_challenger_events") == checkpointed.events + (n - 1 - position)
