"""The local stack the integration tests and benchmarks run against: Kafka and the schema registry
that ``infra/stack.sh`` runs on 127.0.0.1.

* :data:`BROKER`, :data:`REGISTRY` - the shared stack's addresses (``FRAUD_KAFKA_BROKER`` and
  ``FRAUD_SCHEMA_REGISTRY_URL`` override them).
* :func:`stack_running`, :func:`local_stack` - is the shared stack up; a block with it up, started
  (and stopped at the end) only if it was not running.
* :func:`broker_pid` - the local broker's process.
* :class:`PrivateStack` - ``infra/stack.sh`` on its own folder and free ports, for faults that stop
  a broker or a registry (the shared stack is never stopped while others use it), and for listeners
  the shared one has not (SASL, TLS, a registry behind a Keycloak realm).
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path
from typing import Iterator

from app.process import ROOT, free_port
from app.testing.certificates import certificates, registry_realm

STACK = ROOT / "infra" / "stack.sh"
BROKER = os.environ.get("FRAUD_KAFKA_BROKER", "kafka://127.0.0.1:9092")
REGISTRY = os.environ.get("FRAUD_SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081/apis/ccompat/v7")


def stack_running() -> bool:
    """Whether the shared stack's Kafka and registry both run (``infra/stack.sh status``)."""
    out = subprocess.run([str(STACK), "status"], capture_output=True, text=True)
    return out.stderr.count(" running (pid") == 2


@contextlib.contextmanager
def local_stack(env: dict[str, str] | None = None) -> Iterator[None]:
    """The shared Kafka + registry for the block; stopped at the end only if started here (with
    ``env`` as the environment of ``infra/stack.sh start``, if given: this process's otherwise)."""
    started = False
    if not stack_running():
        subprocess.run([str(STACK), "start"], check=True, env=env)
        started = True
    try:
        yield
    finally:
        if started:
            subprocess.run([str(STACK), "stop"], check=False)


def broker_pid() -> int | None:
    """The pid of the local stack's broker (``infra/stack.sh``'s pid file, in ``STACK_DIR`` or
    ``.stack``), or None if it does not run."""
    stack_dir = Path(os.environ.get("STACK_DIR") or ROOT / ".stack")
    try:
        pid = int((stack_dir / "run" / "kafka.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


class PrivateStack:
    """``infra/stack.sh`` on its own folder and free ports (the binaries are shared).

    ``sasl_users`` adds a SASL_PLAINTEXT (PLAIN) listener, ``scram_users`` a SASL_SSL (SCRAM) one,
    ``mutual_tls`` an SSL one that wants client certificates (both with a certificate of a CA made
    in ``folder/tls``: :mod:`app.testing.certificates`), ``registry_clients`` (id: secret) puts the
    registry behind a Keycloak realm with these clients. Services start with :meth:`start`; :meth:`stop`
    stops those started.
    """

    def __init__(self, folder: Path, sasl_users: dict[str, str] | None = None,
                 scram_users: dict[str, str] | None = None, mutual_tls: bool = False,
                 registry_clients: dict[str, str] | None = None):
        self.folder = Path(folder)
        self.kafka_port, self.controller_port, self.registry_port = free_port(), free_port(), free_port()
        self.env = {**os.environ, "STACK_DIR": str(self.folder), "KAFKA_PORT": str(self.kafka_port),
                    "KAFKA_CONTROLLER_PORT": str(self.controller_port), "REGISTRY_PORT": str(self.registry_port),
                    "KAFKA_HEAP_OPTS": "-Xms128m -Xmx512m"}
        self.sasl_port = None
        if sasl_users:  # a SASL_PLAINTEXT (PLAIN) listener too, for these users
            self.sasl_port = free_port()
            self.env.update(KAFKA_SASL_PORT=str(self.sasl_port),
                            KAFKA_SASL_USERS=",".join(f"{u}:{p}" for u, p in sasl_users.items()))
        self.sasl_ssl_port = self.ssl_port = self.ca_file = None
        if scram_users or mutual_tls:  # TLS listeners, with a certificate of a CA made for them
            self.ca_file, keystore = certificates(self.folder / "tls", "127.0.0.1")
            self.env.update(KAFKA_SSL_KEYSTORE_PEM=str(keystore))
        if scram_users:  # a SASL_SSL (SCRAM) listener
            self.sasl_ssl_port = free_port()
            self.env.update(KAFKA_SASL_SSL_PORT=str(self.sasl_ssl_port),
                            KAFKA_SCRAM_USERS=",".join(f"{u}:{p}" for u, p in scram_users.items()))
        if mutual_tls:  # an SSL listener that wants client certificates signed by the same CA
            self.ssl_port = free_port()
            self.env.update(KAFKA_SSL_PORT=str(self.ssl_port), KAFKA_SSL_TRUSTSTORE_PEM=str(self.ca_file))
        self.oidc_port = None
        if registry_clients:  # the registry behind a Keycloak realm with these clients (id: secret)
            self.oidc_port = free_port()
            realm = self.folder / "registry-realm.json"
            realm.parent.mkdir(parents=True, exist_ok=True)
            realm.write_text(json.dumps(registry_realm("registry", registry_clients)))
            self.env.update(OIDC_PORT=str(self.oidc_port), OIDC_REALM_FILE=str(realm),
                            REGISTRY_OIDC_URL=f"http://127.0.0.1:{self.oidc_port}/realms/registry")
        self.started: set[str] = set()

    @property
    def broker(self) -> str:
        return f"kafka://127.0.0.1:{self.kafka_port}"

    @property
    def registry(self) -> str:
        return f"http://127.0.0.1:{self.registry_port}/apis/ccompat/v7"

    def _run(self, *args: str) -> None:
        out = subprocess.run([str(STACK), *args], env=self.env, capture_output=True, text=True, timeout=240)
        if out.returncode != 0:
            raise RuntimeError(f"stack.sh {' '.join(args)} failed:\n{out.stderr[-3000:]}")

    def start(self, service: str = "kafka") -> None:
        """Start ``service`` (kafka, registry or oidc) of this stack."""
        self._run("start", service)
        self.started.add(service)

    def stop(self, service: str | None = None) -> None:
        """Stop ``service``, or every service this object started."""
        for name in ([service] if service else ["registry", "kafka", "oidc"]):
            if name in self.started:
                self._run("stop", name)
                self.started.discard(name)
