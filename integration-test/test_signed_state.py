"""State read back from Kafka is data, never code: a checkpoint written to a changelog topic by anyone
but the service (unsigned, with a forged signature, or signed with another key) is refused at the
next recovery, before anything unpickles it; the worker logs and counts it and goes on scoring with a
new state."""
from __future__ import annotations

import pickle
import time

import settings
from app.data.synthetic import generate
from app.records import Score
from app.replay import transaction_id
from app.state.checkpointed import envelope
from app.state.signing import Signer
from app.testing.kafka import produce_raw, read
from app.testing.replay import replay
from app.testing.worker import assert_healthy, wait_committed, wait_for

KEY = "integration-test state key, 32 bytes+"
ENV = {"FRAUD_ARF_TREES": "3", "FRAUD_STATE_KEY": KEY, "FRAUD_CHECKPOINT_EVERY_EVENTS": "200",
       "FRAUD_ANOMALY_CHECKPOINT_EVERY_EVENTS": "200", "FRAUD_DRIFT_CHECKPOINT_EVERY_VALUES": "200"}


class CreatesFile:
    """Unpickling this opens ``path`` for writing: the file exists if anything unpickled it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def malicious(magic: bytes, path, position) -> bytes:
    """A plausible checkpoint (envelope, the state's magic header) whose pickle creates ``path``."""
    return envelope(position, magic + pickle.dumps({"format": 1, "model": CreatesFile(str(path))}))


def forged(value: bytes) -> bytes:
    """``value`` with a signature trailer that names the worker's key id but whose MAC is made up."""
    return value + b"FSG1" + Signer(KEY).key_id + b"\x5a" * 32



def _restart_scores(make_worker, names, name: str, start: int, count: int):
    """A new worker on the same app; ``count`` new transactions from ``start``; it and their scores."""
    worker = make_worker(ENV, name=name, start=False).start(timeout_s=150)
    replay(names, generate(count, seed=start), labels="in-event", keep_ids=True, start_index=start)
    ids = {transaction_id("tx", i) for i in range(start, start + count)}
    deadline = time.monotonic() + 180
    while True:
        scores = [v for _, v, _, _ in read(names.scores, Score, timeout_s=30, idle_s=2)]
        new = [v for v in scores if v["transaction_id"] in ids]
        if {v["transaction_id"] for v in new} >= ids or time.monotonic() > deadline:
            return worker, new


def test_forged_checkpoints_are_refused_and_never_unpickled(make_worker, names, tmp_path):
    first = make_worker(ENV, name="first")
    replay(names, generate(1000, seed=3), labels="in-event", keep_ids=True)
    wait_committed(first, names.transactions, timeout_s=240)  # the machine may be busy: generous
    wait_for(first, lambda: first.metric("fraud_checkpoints_total") >= 1
             and first.metric("fraud_anomaly_checkpoints_total") >= 1, 60, "checkpoints")
    first.stop()  # a clean stop: every state checkpointed, signed

    # unsigned checkpoints to the model and drift tables, a forged signature for the anomaly detector
    model_file, anomaly_file, drift_file = tmp_path / "model-ran", tmp_path / "anomaly-ran", tmp_path / "drift-ran"
    produce_raw(names.changelog(settings.CHECKPOINT_TABLE),
                [(b"0", malicious(b"FRDL", model_file, {"transactions": 10**9, "labels": 10**9}))])
    produce_raw(names.changelog(settings.ANOMALY_CHECKPOINT_TABLE),
                [(b"0", forged(malicious(b"FRDA", anomaly_file, 10**9)))])
    produce_raw(names.changelog(settings.DRIFT_CHECKPOINT_TABLE),
                [(b"features:0", Signer("another app's key, long enough").sign(
                    malicious(b"FRDM", drift_file, 10**9), b"features:0"))])

    second, scores = _restart_scores(make_worker, names, "second", 1000, 300)
    assert len({v["transaction_id"] for v in scores}) == 300, second.log_tail()  # it still scores
    # a new model, not the forged one: with no checkpoint it reads back the 1,000 transactions before
    assert min(v["events_learned"] for v in scores) == 1000
    log = second.log_text()
    assert "partition 0: refused the model checkpoint of table" in log and "key b'0'" in log, second.log_tail()
    assert "refused the anomaly detector checkpoint" in log and "refused the features drift monitor checkpoint" in log
    assert second.metric("fraud_state_rejected_total", state="model", reason="unsigned") == 1
    assert second.metric("fraud_state_rejected_total", state="anomaly detector", reason="bad_signature") == 1
    assert second.metric("fraud_state_rejected_total", state="features drift monitor", reason="other_key") == 1
    assert not model_file.exists() and not anomaly_file.exists() and not drift_file.exists()
    assert_healthy(second)
    wait_committed(second, names.transactions, timeout_s=240)
    second.stop()

    # the model's checkpoint again, now with a forged signature over the worker's key id
    produce_raw(names.changelog(settings.CHECKPOINT_TABLE),
                [(b"0", forged(malicious(b"FRDL", model_file, {"transactions": 10**9, "labels": 10**9})))])
    third, scores = _restart_scores(make_worker, names, "third", 1300, 300)
    assert len({v["transaction_id"] for v in scores}) == 300, third.log_tail()
    assert min(v["events_learned"] for v in scores) == 1300  # a new model, which read back all 1,300 before
    assert "partition 0: refused the model checkpoint of table" in third.log_text(), third.log_tail()
    assert third.metric("fraud_state_rejected_total", state="model", reason="bad_signature") == 1
    # the anomaly detector's own signed checkpoint, written by the second worker, is restored
    assert third.metric("fraud_state_rejected_total", state="anomaly detector") == 0
    assert not model_file.exists()
    assert_healthy(third)
