"""Kafka SASL/SSL and registry basic auth pass from the settings (the environment) to every client."""
from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import certifi
import faust
import pytest

from app.security import faust_credentials, kafka_client_options
from app.serialization import make_registry_client

ROOT = Path(__file__).resolve().parents[2]


def conf(**overrides) -> types.SimpleNamespace:
    base = dict(KAFKA_SECURITY_PROTOCOL="PLAINTEXT", KAFKA_SASL_MECHANISM="PLAIN", KAFKA_SASL_USERNAME="",
                KAFKA_SASL_PASSWORD="", KAFKA_SSL_CAFILE="", KAFKA_SSL_CERTFILE="", KAFKA_SSL_KEYFILE="")
    return types.SimpleNamespace(**{**base, **overrides})


def test_plaintext_is_the_default():
    assert kafka_client_options(conf()) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(conf()) is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext(mechanism):
    c = conf(KAFKA_SECURITY_PROTOCOL="sasl_plaintext", KAFKA_SASL_MECHANISM=mechanism,
             KAFKA_SASL_USERNAME="fraud", KAFKA_SASL_PASSWORD="s3cret")
    assert kafka_client_options(c) == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism,
                                       "sasl_plain_username": "fraud", "sasl_plain_password": "s3cret"}
    credentials = faust_credentials(c)
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password, credentials.mechanism.value) == ("fraud", "s3cret", mechanism)
    assert credentials.ssl_context is None


def test_sasl_without_a_user_is_refused_with_the_setting_named():
    with pytest.raises(ValueError, match="FRAUD_KAFKA_SASL_USERNAME"):
        kafka_client_options(conf(KAFKA_SECURITY_PROTOCOL="SASL_SSL"))


def test_unknown_protocol_is_refused():
    with pytest.raises(ValueError, match="FRAUD_KAFKA_SECURITY_PROTOCOL"):
        kafka_client_options(conf(KAFKA_SECURITY_PROTOCOL="TLS"))


def test_ssl_verifies_the_broker_with_the_given_ca():
    c = conf(KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CAFILE=certifi.where())
    options = kafka_client_options(c)
    context = options["ssl_context"]
    assert options["security_protocol"] == "SSL"
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # the CA file was loaded
    assert isinstance(faust_credentials(c), faust.SSLCredentials)


def test_sasl_ssl_has_both():
    c = conf(KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_USERNAME="u", KAFKA_SASL_PASSWORD="p",
             KAFKA_SSL_CAFILE=certifi.where())
    options = kafka_client_options(c)
    assert isinstance(options["ssl_context"], ssl.SSLContext) and options["sasl_plain_username"] == "u"
    credentials = faust_credentials(c)
    assert isinstance(credentials, faust.SASLCredentials) and isinstance(credentials.ssl_context, ssl.SSLContext)


def test_a_missing_ca_file_fails_at_once():
    with pytest.raises(FileNotFoundError):
        kafka_client_options(conf(KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CAFILE="/nonexistent/ca.pem"))


# --- the registry's basic auth ---------------------------------------------------------------------------
class _Registry(BaseHTTPRequestHandler):
    """Answers ``GET .../subjects`` with ``[]`` for user ``fraud`` / ``s3cret``, else 401; records headers."""

    seen: list[str | None] = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        auth = self.headers.get("Authorization")
        type(self).seen.append(auth)
        ok = auth == "Basic " + base64.b64encode(b"fraud:s3cret").decode()
        body = json.dumps([] if ok else {"error_code": 401, "message": "Unauthorized"}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def registry():
    _Registry.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/apis/ccompat/v7"
    server.shutdown()


def test_registry_client_sends_basic_auth(registry):
    assert make_registry_client(registry, auth=("fraud", "s3cret")).get_subjects() == []
    assert _Registry.seen[-1] == "Basic " + base64.b64encode(b"fraud:s3cret").decode()


def _in_worker_env(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter whose settings come from ``env`` (as a worker's would)."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def test_worker_settings_reach_the_registry_and_kafka_clients(registry):
    code = (
        "import asyncio, settings\n"
        "from app.worker import app, wait_for_registry  # first, as faust -A app does\n"
        "from app.security import kafka_client_options\n"
        "from app.topics import registry_client\n"
        "asyncio.run(wait_for_registry())\n"
        "print(registry_client(settings).get_subjects())\n"
        "o = kafka_client_options(settings)\n"
        "print(o['security_protocol'], o['sasl_mechanism'], o['sasl_plain_username'])\n"
        "c = app.conf.broker_credentials\n"
        "print(type(c).__name__, c.username, c.mechanism.value)\n"
    )
    out = _in_worker_env(code, FRAUD_SCHEMA_REGISTRY_URL=registry, FRAUD_SCHEMA_REGISTRY_USER="fraud",
                         FRAUD_SCHEMA_REGISTRY_PASSWORD="s3cret", FRAUD_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
                         FRAUD_KAFKA_SASL_MECHANISM="SCRAM-SHA-256", FRAUD_KAFKA_SASL_USERNAME="svc",
                         FRAUD_KAFKA_SASL_PASSWORD="pw")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.splitlines()[-3:] == ["[]", "SASL_PLAINTEXT SCRAM-SHA-256 svc", "SASLCredentials svc SCRAM-SHA-256"]
    expected = "Basic " + base64.b64encode(b"fraud:s3cret").decode()
    assert _Registry.seen and all(header == expected for header in _Registry.seen)


def test_wrong_registry_password_stops_the_worker_with_the_reason(registry):
    code = "import asyncio\nfrom app.worker import wait_for_registry\nasyncio.run(wait_for_registry())\n"
    out = _in_worker_env(code, FRAUD_SCHEMA_REGISTRY_URL=registry, FRAUD_SCHEMA_REGISTRY_USER="fraud",
                         FRAUD_SCHEMA_REGISTRY_PASSWORD="wrong", FRAUD_REGISTRY_WAIT_S="5")
    assert out.returncode != 0
    assert "refused us" in out.stderr and "401" in out.stderr, out.stderr[-2000:]
