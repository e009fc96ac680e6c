"""A worker on a SASL_PLAINTEXT listener (private Kafka), credentials from the FRAUD_KAFKA_* settings."""
from __future__ import annotations

import secrets

from app.data.synthetic import generate
from faults import WORKER_ENV, Collector, PrivateStack, assert_healthy, wait_until
from harness import Names, Worker, replay


def test_worker_authenticates_with_sasl_plain_and_a_wrong_password_is_refused(stack, tmp_path):
    from app.records import Score

    password = secrets.token_hex(8)  # made up for this run: no secret lives in the repository
    private = PrivateStack(tmp_path / "stack", sasl_users={"fraud": password})
    names = Names("sasl")
    sasl = {**WORKER_ENV, "FRAUD_KAFKA_BROKER": f"kafka://127.0.0.1:{private.sasl_port}",
            "FRAUD_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "FRAUD_KAFKA_SASL_MECHANISM": "PLAIN",
            "FRAUD_KAFKA_SASL_USERNAME": "fraud"}
    good = Worker(names, tmp_path / "good", {**sasl, "FRAUD_KAFKA_SASL_PASSWORD": password}, name="good")
    bad = Worker(Names("saslbad"), tmp_path / "bad", {**sasl, "FRAUD_KAFKA_SASL_PASSWORD": "wrong"}, name="bad")
    try:
        private.start("kafka")
        good.start(120)
        with Collector(names.scores, Score, broker=private.broker) as scores:  # the plaintext listener
            sent = replay(names, generate(300, seed=41), broker=private.broker, keep_ids=True)
            wait_until(lambda: scores.covers(sent.ids), 120, "every transaction scored over SASL")
        assert_healthy(good)

        bad.launch()
        wait_until(lambda: "Authentication failed" in bad.log_text() or not bad.alive(), 120,
                   "the broker refuses the wrong password")
        assert "Authentication failed" in bad.log_text(), bad.log_tail()
        assert "Worker]: Ready" not in bad.log_text()
    finally:
        good.stop()
        bad.stop()
        private.stop()
