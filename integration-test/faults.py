"""Fault injection against real workers: each scenario replays transactions, injects one fault and
counts what came out.

A scenario returns a :class:`FaultResult`: events sent, distinct transactions scored, duplicate
scores, transactions never scored (lost), and the recovery time in seconds, measured from the
moment named in ``recovery_from`` to the first score made afterwards (``processing_time`` of the
scores, a wall clock). Used by ``test_faults.py`` (asserts) and ``benchmarks/faults.py`` (table).

Broker faults run on a private Kafka (:class:`PrivateStack`, ``infra/stack.sh`` with its own
folder and ports); registry faults put a :class:`TcpProxy` between the worker and the registry and
switch it off, so the shared stack is never stopped.
"""
from __future__ import annotations

import asyncio
import collections
import functools
import json
import math
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness import BROKER, REGISTRY, STACK, Names, Worker, decoder, delete_topics, free_port, replay

# Faust reads these from the environment: a killed worker leaves its consumer group after 10 s
# instead of Faust's default 60 s, so failover and restart finish inside a test's time.
FAST_GROUP = {"FRAUD_BROKER_SESSION_TIMEOUT_S": "10"}
# The fault scenarios are about delivery, not model quality: the fast model keeps the runs short.
WORKER_ENV = {**FAST_GROUP, "FRAUD_MODEL_KIND": "lr"}


class WorkerStalled(TimeoutError):
    """A worker consumes nothing more although its consumer lag is above 0."""


def raise_stall_or(error: TimeoutError, worker: Worker, topic: str, watch_s: float = 12.0) -> None:
    """After a wait timed out: raise :class:`WorkerStalled` if ``worker`` reads nothing of ``topic`` for
    ``watch_s`` seconds while its lag there is above 0 (a stall), else re-raise ``error`` (the worker
    read everything and something is still missing: a loss)."""
    before = worker.metric("fraud_events_in_total", topic=topic)
    time.sleep(watch_s)
    after = worker.metric("fraud_events_in_total", topic=topic)
    lag = worker.metric("fraud_consumer_lag", topic=topic)
    if after == before and lag > 0:
        raise WorkerStalled(f"{error}; {worker.name} read nothing of {topic} in {watch_s:.0f}s with a lag "
                            f"of {lag:.0f}\n{worker.log_tail(30)}") from error
    raise error


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.2) -> float:
    """Poll ``condition`` until it is true; the seconds it took. Raises ``TimeoutError`` naming ``what``."""
    started = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"{what}: not true after {timeout_s:.0f}s")
        time.sleep(interval_s)


@dataclass
class FaultResult:
    fault: str
    sent: int
    scored: int
    duplicates: int
    lost: int
    recovery_s: float
    recovery_from: str
    dead_letters: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    def row(self) -> str:
        return (f"{self.fault:<30} {self.sent:>6} {self.scored:>7} {self.duplicates:>10} {self.lost:>5} "
                f"{self.recovery_s:>10.1f}  {self.recovery_from}")

    HEADER = f"{'fault':<30} {'sent':>6} {'scored':>7} {'duplicates':>10} {'lost':>5} {'recovery_s':>10}  recovery measured from"


def tally(fault: str, sent_ids: list[str], scores: list[dict], recovery_s: float, recovery_from: str,
          **notes: Any) -> FaultResult:
    """Count what became of ``sent_ids`` in ``scores``."""
    counts = collections.Counter(s["transaction_id"] for s in scores)
    sent = set(sent_ids)
    return FaultResult(
        fault=fault, sent=len(sent_ids), scored=len(sent & set(counts)),
        duplicates=sum(n - 1 for tid, n in counts.items() if tid in sent),
        lost=len(sent - set(counts)), recovery_s=recovery_s, recovery_from=recovery_from, notes=notes,
    )


def assert_healthy(worker: Worker) -> None:
    """The worker process runs and none of its agents crashed (Faust restarts a crashed agent, losing
    the events it held)."""
    assert worker.alive(), f"{worker.name} died:\n{worker.log_tail()}"
    crashes = [line for line in worker.log_text().splitlines() if "Crashed reason=" in line]
    assert not crashes, f"{worker.name}: an agent crashed:\n" + "\n".join(crashes[:5])


def dead_letter_count(names: Names, broker: str = BROKER) -> int:
    """Messages on the test's dead-letter topic (none expected: every fault input is valid)."""
    from harness import read

    return len(read(names.dead_letters, None, timeout_s=15, idle_s=1.0, broker=broker))


def first_score_after(scores: list[dict], t: float, partitions: set[int] | None = None) -> dict | None:
    """The earliest score made after wall-clock time ``t`` (optionally from these source partitions)."""
    later = [s for s in scores if s["processing_time"] > t and (partitions is None or s["partition"] in partitions)]
    return min(later, key=lambda s: s["processing_time"]) if later else None


# --- reading an output topic live ---------------------------------------------------------------------
class Collector:
    """Reads a topic from the beginning in a background thread, decoding each value, until stopped.

    ``values`` grows as messages arrive (each a dict, plus ``_partition`` and ``_offset`` of the
    output message). Survives broker restarts (the client reconnects).
    """

    def __init__(self, topic: str, record: type | None, broker: str = BROKER, registry: str = REGISTRY):
        self.topic, self.broker = topic, broker
        self.decode = decoder(record, registry) if record is not None else (lambda b: {"raw": b})
        self.values: list[dict] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"collect-{topic}", daemon=True)

    def start(self) -> "Collector":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def __enter__(self) -> "Collector":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def count(self) -> int:
        return len(self.values)

    def ids(self) -> set[str]:
        return {v.get("transaction_id") for v in list(self.values)}

    def covers(self, ids) -> bool:
        if self.error is not None:
            raise RuntimeError(f"reading {self.topic} failed") from self.error
        return set(ids) <= self.ids()

    def _run(self) -> None:
        try:
            asyncio.run(self._consume())
        except BaseException as exc:  # noqa: BLE001 - reported through covers()
            self.error = exc

    async def _consume(self) -> None:
        from aiokafka import AIOKafkaConsumer

        import settings
        from app.admin import bootstrap_servers, topic_partitions
        from app.security import kafka_client_options

        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(self.broker), enable_auto_commit=False,
                                    auto_offset_reset="earliest", group_id=None, **kafka_client_options(settings))
        await consumer.start()
        try:
            tps = await topic_partitions(consumer, self.topic, math.inf, stop_if=self._stop.is_set)
            if not tps:
                return
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while not self._stop.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=5000)
                for records in batch.values():
                    for r in records:
                        value = self.decode(r.value) if r.value is not None else {}
                        self.values.append({**value, "_partition": r.partition, "_offset": r.offset,
                                            "_key": r.key})
        finally:
            await consumer.stop()


def settle(collector: Collector, quiet_s: float = 3.0, timeout_s: float = 30.0) -> None:
    """Until ``collector`` has seen nothing new for ``quiet_s`` (late duplicates get counted)."""
    last = [collector.count(), time.monotonic()]

    def quiet() -> bool:
        n = collector.count()
        if n != last[0]:
            last[:] = [n, time.monotonic()]
        return time.monotonic() - last[1] >= quiet_s

    wait_until(quiet, timeout_s, f"{collector.topic} still growing")


def finish(fault: str, names: Names, worker: Worker, scores: Collector, sent_ids: list[str], since: float | None,
           recovery_from: str, *, quiet_s: float = 3.0, partitions: set[int] | None = None,
           recovery_s: float | None = None, broker: str = BROKER, **notes: Any) -> FaultResult:
    """The end of every scenario, once every id is scored: let late duplicates arrive, check the
    worker, measure the recovery (first score after ``since``, unless ``recovery_s`` is given), tally
    and count the dead letters."""
    settle(scores, quiet_s=quiet_s)
    assert_healthy(worker)
    if recovery_s is None:
        recovery_s = first_score_after(scores.values, since, partitions)["processing_time"] - since
    result = tally(fault, sent_ids, scores.values, recovery_s, recovery_from, **notes)
    result.dead_letters = dead_letter_count(names, broker)
    return result


# --- producing in the background ----------------------------------------------------------------------
class ReplayThread(threading.Thread):
    """``harness.replay`` in a thread (the stream goes on while a fault is injected)."""

    def __init__(self, names: Names, rows: list, **kwargs: Any):
        super().__init__(name="replay", daemon=True)
        self.names, self.rows, self.kwargs = names, rows, kwargs
        self.stats = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.stats = replay(self.names, self.rows, keep_ids=True, **self.kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised by result()
            self.error = exc

    def result(self, timeout_s: float = 120.0):
        self.join(timeout_s)
        if self.is_alive():
            raise TimeoutError("the replay did not finish")
        if self.error is not None:
            raise self.error
        return self.stats


# --- a private Kafka ----------------------------------------------------------------------------------
def _openssl(folder: Path, *args: str) -> None:
    out = subprocess.run(["openssl", *args], cwd=folder, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{out.stderr[-2000:]}")


def certificates(folder: Path, ip: str) -> tuple[Path, Path]:
    """A new CA and a server certificate it signs for ``ip`` (openssl): the CA's PEM, and a broker
    keystore PEM (the server's unencrypted PKCS#8 key, then its certificate)."""
    folder.mkdir(parents=True, exist_ok=True)
    openssl = functools.partial(_openssl, folder)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=fraud-test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={ip}")
    (folder / "san.cnf").write_text(f"subjectAltName=IP:{ip}\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "san.cnf")
    keystore = folder / "keystore.pem"
    keystore.write_text((folder / "server.key").read_text() + (folder / "server.pem").read_text())
    return folder / "ca.pem", keystore


def client_certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A client certificate and key for ``name``, signed by the CA that :func:`certificates` made in
    ``folder``."""
    openssl = functools.partial(_openssl, folder)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2")
    return folder / f"{name}.pem", folder / f"{name}.key"


def registry_realm(name: str, clients: dict[str, str]) -> dict:
    """A Keycloak realm for a registry: confidential clients that get tokens with their id and secret
    (the client credentials grant, which Apicurio's basic auth uses), and the registry's own client."""
    return {"realm": name, "enabled": True, "clients": [
        *({"clientId": client, "secret": secret, "enabled": True, "publicClient": False, "protocol": "openid-connect",
           "serviceAccountsEnabled": True, "standardFlowEnabled": False, "directAccessGrantsEnabled": False}
          for client, secret in clients.items()),
        {"clientId": "registry-api", "enabled": True, "bearerOnly": True, "protocol": "openid-connect"}]}


class PrivateStack:
    """``infra/stack.sh`` on its own folder and free ports (the binaries are shared)."""

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
        self._run("start", service)
        self.started.add(service)

    def stop(self, service: str | None = None) -> None:
        for name in ([service] if service else ["registry", "kafka", "oidc"]):
            if name in self.started:
                self._run("stop", name)
                self.started.discard(name)


# --- a registry that can be switched off --------------------------------------------------------------
class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream``; :meth:`down` refuses connections and cuts the open
    ones (as a stopped registry would), :meth:`up` serves again on the same port."""

    def __init__(self, upstream: tuple[str, int], port: int | None = None):
        self.upstream = upstream
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> "TcpProxy":
        if self._listener is None:
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            self._listener = listener
            threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def down(self) -> "TcpProxy":
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def registry_upstream(url: str = REGISTRY) -> tuple[str, int]:
    """(host, port) of a registry URL.

    >>> registry_upstream("http://127.0.0.1:8081/apis/ccompat/v7")
    ('127.0.0.1', 8081)
    """
    from urllib.parse import urlparse

    parsed = urlparse(url)
    return parsed.hostname, parsed.port or 80


def registry_path(url: str = REGISTRY) -> str:
    """The path part of a registry URL, to put behind a proxy's address.

    >>> registry_path("http://127.0.0.1:8081/apis/ccompat/v7")
    '/apis/ccompat/v7'
    """
    from urllib.parse import urlparse

    return urlparse(url).path


# --- the scenarios ------------------------------------------------------------------------------------
def _rows(n: int, seed: int) -> list:
    from app.data.synthetic import generate

    return generate(n, seed=seed)


def no_fault(folder: Path, n: int = 3000, rate: float = 400.0) -> FaultResult:
    """The baseline: the same replay with nothing going wrong (recovery: from the first send)."""
    from app.records import Score

    names = Names("nofault")
    worker = Worker(names, folder / "w", WORKER_ENV)
    try:
        worker.start(120)
        with Collector(names.scores, Score) as scores:
            started = time.time()
            sent = replay(names, _rows(n, 10), rate=rate, id_prefix="nf", keep_ids=True)
            wait_until(lambda: scores.covers(sent.ids), 120, "every transaction scored")
            return finish("none (baseline)", names, worker, scores, sent.ids, started, "the first send", quiet_s=2.0)
    finally:
        worker.stop()
        delete_topics(names)


def kill_and_restart(folder: Path, n: int = 3000, rate: float = 400.0) -> FaultResult:
    """kill -9 of the only worker a third into the replay, then a new worker in its place."""
    from app.records import Score

    names = Names("killrestart")
    workers: list[Worker] = []
    try:
        first = Worker(names, folder / "w1", WORKER_ENV, name="w1").start(120)
        workers.append(first)
        with Collector(names.scores, Score) as scores:
            producer = ReplayThread(names, _rows(n, 11), rate=rate, id_prefix="kr")
            producer.start()
            wait_until(lambda: scores.count() >= n // 3, 120, "a third of the stream scored")
            first.kill()
            killed_at = time.time()
            second = Worker(names, folder / "w2", WORKER_ENV, name="w2")
            workers.append(second)
            second.start(120)
            sent = producer.result()
            wait_until(lambda: scores.covers(sent.ids), 180, "every transaction scored after the restart")
            return finish("kill -9 + restart", names, second, scores, sent.ids, killed_at, "the kill")
    finally:
        for w in workers:
            w.stop()
        delete_topics(names)


def broker_restart(folder: Path, n: int = 3000, down_s: float = 5.0) -> FaultResult:
    """The worker's broker stops while the worker is in the middle of a backlog, stays down ``down_s``,
    comes back; then the rest of the stream is sent. On a private Kafka."""
    from app.records import Score

    stack = PrivateStack(folder / "stack")
    names = Names("brokerrestart")
    worker = None
    try:
        stack.start("kafka")
        env = {**WORKER_ENV, "FRAUD_KAFKA_BROKER": stack.broker}
        worker = Worker(names, folder / "w", env).start(120)
        rows = _rows(n, 12)
        half = n // 2
        with Collector(names.scores, Score, broker=stack.broker) as scores:
            first = replay(names, rows[:half], broker=stack.broker, id_prefix="br", keep_ids=True)
            wait_until(lambda: scores.count() >= half // 4, 120, "a quarter of the first half scored")
            scored_before = len(scores.ids())  # when the stop is issued
            stack.stop("kafka")
            stopped_at = time.monotonic()
            wait_until(lambda: time.monotonic() - stopped_at >= down_s or not worker.alive(), down_s + 5, "outage")
            assert worker.alive(), "the worker died while the broker was down:\n" + worker.log_tail()
            stack.start("kafka")
            back_at = time.time()
            second = replay(names, rows[half:], broker=stack.broker, id_prefix="br", start_index=half, keep_ids=True)
            ids = first.ids + second.ids
            wait_until(lambda: scores.covers(ids), 180, "every transaction scored after the broker came back")
            return finish("broker stop/start", names, worker, scores, ids, back_at, "the broker's restart",
                          broker=stack.broker, down_s=down_s, scored_before_stop=scored_before)
    finally:
        if worker is not None:
            worker.stop()
        stack.stop()


def registry_down_at_start(folder: Path, n: int = 1000, down_s: float = 4.0) -> FaultResult:
    """The worker starts while its registry is unreachable: it says so, retries with backoff, and once
    the registry answers it starts and scores everything."""
    from app.records import Score

    proxy = TcpProxy(registry_upstream())
    names = Names("registrystart")
    env = {**WORKER_ENV, "FRAUD_SCHEMA_REGISTRY_URL": proxy.url + registry_path(), "FRAUD_REGISTRY_WAIT_S": "120"}
    worker = Worker(names, folder / "w", env)
    try:
        worker.launch()
        wait_until(lambda: worker.log_text().count("not reachable") >= 2 or not worker.alive(), 90,
                   "two retry lines in the log")
        assert worker.alive(), worker.log_tail()
        started = time.monotonic()
        wait_until(lambda: time.monotonic() - started >= down_s, down_s + 1, "outage")
        assert worker.alive(), worker.log_tail()
        retries = worker.log_text().count("not reachable")
        proxy.up()
        up_at = time.monotonic()
        worker.wait_ready(120)
        ready_s = time.monotonic() - up_at
        with Collector(names.scores, Score) as scores:
            sent = replay(names, _rows(n, 13), id_prefix="rs", keep_ids=True)
            wait_until(lambda: scores.covers(sent.ids), 120, "every transaction scored")
            line = next(x for x in worker.log_text().splitlines() if "not reachable" in x)
            return finish("registry down at start", names, worker, scores, sent.ids, None,
                          "the registry's return (to worker ready)", quiet_s=2.0, recovery_s=ready_s,
                          retries=retries, log_line=line.strip())
    finally:
        worker.stop()
        proxy.down()
        delete_topics(names)


def registry_down_mid_stream(folder: Path, n: int = 2000) -> FaultResult:
    """The registry goes away after the worker has seen the schemas: the rest of the stream is scored
    with the cached schemas while it is down."""
    from app.records import Score

    proxy = TcpProxy(registry_upstream()).up()
    names = Names("registrymid")
    env = {**WORKER_ENV, "FRAUD_SCHEMA_REGISTRY_URL": proxy.url + registry_path()}
    worker = Worker(names, folder / "w", env)
    try:
        worker.start(120)
        rows = _rows(n, 14)
        half = n // 2
        with Collector(names.scores, Score) as scores:
            first = replay(names, rows[:half], id_prefix="rm", keep_ids=True)
            wait_until(lambda: scores.covers(first.ids), 120, "the first half scored")
            proxy.down()
            down_at = time.time()
            second = replay(names, rows[half:], id_prefix="rm", start_index=half, keep_ids=True)
            wait_until(lambda: scores.covers(second.ids), 120, "the second half scored, registry down")
            during = [s for s in scores.values if s["processing_time"] > down_at]
            return finish("registry down mid-stream", names, worker, scores, first.ids + second.ids, down_at,
                          "the registry's stop (stream goes on)", quiet_s=2.0,
                          scored_while_down=len({s["transaction_id"] for s in during}))
    finally:
        worker.stop()
        proxy.down()
        delete_topics(names)


def failover(folder: Path, n: int = 4000, rate: float = 250.0, checkpoint_every: int = 200) -> FaultResult:
    """Two workers share a 4-partition topic; one is killed -9 mid-stream. The survivor takes its
    partitions, restores their models from the checkpoints and scores the rest."""
    from app.admin import ensure_topics
    from app.records import Score

    names = Names("failover")
    asyncio.run(ensure_topics(BROKER, [getattr(names, k.lower()) for k in
                                       ("TRANSACTIONS", "LABELS", "SCORES", "ANOMALIES", "DRIFT_ALERTS", "DEAD_LETTERS")], 4))
    env = {**WORKER_ENV, "FRAUD_TOPIC_PARTITIONS": "4", "FRAUD_CHECKPOINT_EVERY_EVENTS": str(checkpoint_every)}
    survivor = Worker(names, folder / "a", env, name="a")
    victim = Worker(names, folder / "b", env, name="b")
    try:
        survivor.start(120)
        victim.start(120)
        with Collector(names.scores, Score) as scores:
            producer = ReplayThread(names, _rows(n, 15), rate=rate, id_prefix="fo")
            producer.start()
            def checkpointed() -> bool:
                mine = _partitions(victim)
                return bool(mine) and survivor.metric("fraud_events_out_total", topic=names.scores) > 0 and all(
                    victim.metric("fraud_checkpoints_total", partition=str(p)) > 0 for p in mine)

            wait_until(checkpointed, 120, "both workers scoring, the one to kill with a checkpoint per partition")
            victim_partitions = _partitions(victim)
            killed_at = time.time()
            victim.kill()
            sent = producer.result(180)
            try:
                wait_until(lambda: scores.covers(sent.ids), 180, "every transaction scored after the failover")
            except TimeoutError as exc:
                raise_stall_or(exc, survivor, names.transactions)
            result = finish("failover (2 workers, 1 killed)", names, survivor, scores, sent.ids, killed_at, "the kill",
                            partitions=victim_partitions, victim_partitions=sorted(victim_partitions))
            handoff = result.notes["handoff"] = {}
            for p in sorted(victim_partitions):
                before = [s for s in scores.values if s["partition"] == p and s["processing_time"] <= killed_at]
                taken = first_score_after(scores.values, killed_at, {p})
                handoff[p] = {"learned_before_kill": max((s["events_learned"] for s in before), default=0),
                              "learned_at_takeover": taken["events_learned"] if taken else None}
            return result
    finally:
        survivor.stop()
        victim.stop()
        delete_topics(names)


def _partitions(worker: Worker) -> set[int]:
    """The source partitions a worker has a live model for (its ``fraud_model_events_learned`` labels)."""
    found = set()
    for line in worker.metrics_text().splitlines():
        if line.startswith("fraud_model_events_learned{"):
            found.add(int(line.split('partition="', 1)[1].split('"', 1)[0]))
    return found


SCENARIOS = {
    "none": no_fault,
    "kill": kill_and_restart,
    "broker": broker_restart,
    "registry-start": registry_down_at_start,
    "registry-mid": registry_down_mid_stream,
    "failover": failover,
}
