"""A worker on a SASL_PLAINTEXT listener, a SASL_SSL (SCRAM) one and an SSL one with client
certificates (mutual TLS) of a private Kafka; credentials, CA and certificates from the FRAUD_KAFKA_*
settings. And a worker on a registry behind auth (Apicurio with a Keycloak realm), its credentials
from FRAUD_SCHEMA_REGISTRY_USER / _PASSWORD."""
from __future__ import annotations

import secrets

from app.data.synthetic import generate
from app.testing.certificates import certificates, client_certificate
from app.testing.collector import Collector
from app.testing.faults import WORKER_ENV
from app.testing.names import Names
from app.testing.replay import replay
from app.testing.stack import PrivateStack
from app.testing.wait import wait_until
from app.testing.worker import Worker, assert_healthy


def scores_through_it_and_refuses(tmp_path, private: PrivateStack, names: Names, good_env: dict, bad_env: dict,
                                  refusal: str, what: str, seed: int) -> None:
    """A worker with ``good_env`` scores every transaction (replayed and read back on the plaintext
    listener); one with ``bad_env`` logs ``refusal`` and never becomes ready."""
    from app.records import Score

    good = Worker(names, tmp_path / "good", good_env, name="good")
    bad = Worker(Names(names.prefix + "bad"), tmp_path / "bad", bad_env, name="bad")
    try:
        private.start("kafka")
        good.start(120)
        with Collector(names.scores, Score, broker=private.broker) as scores:
            sent = replay(names, generate(300, seed=seed), broker=private.broker, keep_ids=True)
            wait_until(lambda: scores.covers(sent.ids), 120, f"every transaction scored over {what}")
        assert_healthy(good)

        bad.launch()
        wait_until(lambda: refusal in bad.log_text() or not bad.alive(), 120, f"{what}: {refusal}")
        assert refusal in bad.log_text(), bad.log_tail()
        assert "Worker]: Ready" not in bad.log_text()
    finally:
        good.stop()
        bad.stop()
        private.stop()


def test_worker_authenticates_with_sasl_plain_and_a_wrong_password_is_refused(stack, tmp_path):
    password = secrets.token_hex(8)  # made up for this run: no secret lives in the repository
    private = PrivateStack(tmp_path / "stack", sasl_users={"fraud": password})
    sasl = {**WORKER_ENV, "FRAUD_KAFKA_BROKER": f"kafka://127.0.0.1:{private.sasl_port}",
            "FRAUD_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "FRAUD_KAFKA_SASL_MECHANISM": "PLAIN",
            "FRAUD_KAFKA_SASL_USERNAME": "fraud"}
    scores_through_it_and_refuses(
        tmp_path, private, Names("sasl"), {**sasl, "FRAUD_KAFKA_SASL_PASSWORD": password},
        {**sasl, "FRAUD_KAFKA_SASL_PASSWORD": "wrong"}, refusal="Authentication failed", what="SASL", seed=41)


def test_worker_over_sasl_ssl_with_scram_verifies_the_broker_certificate(stack, tmp_path):
    """SASL_SSL with SCRAM-SHA-512: the worker scores every transaction through it; a worker that
    trusts another CA refuses the broker's certificate and never becomes ready."""
    password = secrets.token_hex(8)
    private = PrivateStack(tmp_path / "stack", scram_users={"fraud": password})
    other_ca, _ = certificates(tmp_path / "other-ca", "127.0.0.1")
    sasl_ssl = {**WORKER_ENV, "FRAUD_KAFKA_BROKER": f"kafka://127.0.0.1:{private.sasl_ssl_port}",
                "FRAUD_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "FRAUD_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                "FRAUD_KAFKA_SASL_USERNAME": "fraud", "FRAUD_KAFKA_SASL_PASSWORD": password}
    scores_through_it_and_refuses(
        tmp_path, private, Names("scram"), {**sasl_ssl, "FRAUD_KAFKA_SSL_CAFILE": str(private.ca_file)},
        {**sasl_ssl, "FRAUD_KAFKA_SSL_CAFILE": str(other_ca)}, refusal="CERTIFICATE_VERIFY_FAILED",
        what="SASL_SSL", seed=43)


def test_worker_over_ssl_with_a_client_certificate_and_one_without_is_refused(stack, tmp_path):
    """SSL with client authentication: the worker with a certificate of the broker's CA scores every
    transaction; one without a client certificate has its connections closed by the broker (the TLS 1.3
    handshake ends on the broker's side after the client's) and never becomes ready."""
    private = PrivateStack(tmp_path / "stack", mutual_tls=True)
    cert, key = client_certificate(private.ca_file.parent, "fraud-worker")
    ssl = {**WORKER_ENV, "FRAUD_KAFKA_BROKER": f"kafka://127.0.0.1:{private.ssl_port}",
           "FRAUD_KAFKA_SECURITY_PROTOCOL": "SSL", "FRAUD_KAFKA_SSL_CAFILE": str(private.ca_file)}
    scores_through_it_and_refuses(
        tmp_path, private, Names("mtls"), {**ssl, "FRAUD_KAFKA_SSL_CERTFILE": str(cert), "FRAUD_KAFKA_SSL_KEYFILE": str(key)},
        ssl, refusal=f"Connection at 127.0.0.1:{private.ssl_port} closed", what="SSL", seed=45)


def test_worker_with_registry_client_credentials_and_a_wrong_secret_is_refused(stack, tmp_path, monkeypatch):
    """A registry behind auth (Apicurio with a Keycloak realm; basic auth with a client's id and
    secret, which the registry exchanges for a token): the worker registers its schemas and scores
    every transaction through it; an anonymous request gets a 401, and a worker with a wrong secret
    stops at the registry's 401 and never becomes ready."""
    import httpx

    import settings
    from app.records import Score

    secret = secrets.token_hex(8)
    private = PrivateStack(tmp_path / "stack", registry_clients={"fraud-detector": secret})
    private.env["REGISTRY_STORAGE"] = "mem"  # a registry of its own without a Kafka of its own
    names = Names("regauth")
    auth = {**WORKER_ENV, "FRAUD_SCHEMA_REGISTRY_URL": private.registry, "FRAUD_SCHEMA_REGISTRY_USER": "fraud-detector"}
    good = Worker(names, tmp_path / "good", {**auth, "FRAUD_SCHEMA_REGISTRY_PASSWORD": secret}, name="good")
    bad = Worker(Names("regauthbad"), tmp_path / "bad", {**auth, "FRAUD_SCHEMA_REGISTRY_PASSWORD": "wrong"}, name="bad")
    try:
        private.start("oidc")
        private.start("registry")
        assert httpx.get(f"{private.registry}/subjects").status_code == 401
        good.start(120)
        monkeypatch.setattr(settings, "SCHEMA_REGISTRY_USER", "fraud-detector")  # the replay and the reader too
        monkeypatch.setattr(settings, "SCHEMA_REGISTRY_PASSWORD", secret)
        with Collector(names.scores, Score, registry=private.registry) as scores:
            sent = replay(names, generate(300, seed=47), registry=private.registry, keep_ids=True)
            wait_until(lambda: scores.covers(sent.ids), 120, "every transaction scored through the registry with auth")
        assert_healthy(good)
        subjects = httpx.get(f"{private.registry}/subjects", auth=("fraud-detector", secret)).json()
        assert f"{names.scores}-value" in subjects and f"{names.transactions}-value" in subjects

        bad.launch()
        wait_until(lambda: "refused us" in bad.log_text() or not bad.alive(), 120, "a wrong secret refused")
        assert "refused us" in bad.log_text() and "401" in bad.log_text(), bad.log_tail()
        assert "Worker]: Ready" not in bad.log_text()
    finally:
        good.stop()
        bad.stop()
        private.stop()
