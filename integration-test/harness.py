"""Test harness for the real local stack: the stack itself, workers as subprocesses, topic reads.

Every test gets its own topic names and consumer group (a unique prefix), so tests never see each
other's messages on the shared broker.
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
STACK = ROOT / "infra" / "stack.sh"
BROKER = os.environ.get("FRAUD_KAFKA_BROKER", "kafka://127.0.0.1:9092")
REGISTRY = os.environ.get("FRAUD_SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081/apis/ccompat/v7")
TOPIC_KEYS = ("TRANSACTIONS", "LABELS", "SCORES", "ANOMALIES", "DRIFT_ALERTS", "DEAD_LETTERS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stack_running() -> bool:
    out = subprocess.run([str(STACK), "status"], capture_output=True, text=True)
    return out.stderr.count(" running (pid") == 2


class Names:
    """The topic names and app id of one test."""

    def __init__(self, tag: str = "t") -> None:
        self.prefix = f"{tag}-{uuid.uuid4().hex[:8]}"
        self.app_id = f"fraud-{self.prefix}"
        for key in TOPIC_KEYS:
            setattr(self, key.lower(), f"{self.prefix}.{key.lower().replace('_', '-')}")

    def env(self) -> dict[str, str]:
        env = {"FRAUD_APP_ID": self.app_id}
        for key in TOPIC_KEYS:
            env[f"FRAUD_{key}_TOPIC"] = getattr(self, key.lower())
        return env


class Worker:
    """``faust -A app worker`` in a subprocess, with its own web port and state folder."""

    def __init__(self, names: Names, workdir: Path, extra_env: dict[str, str] | None = None, name: str = "worker"):
        self.names = names
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.name = name
        self.log_path = self.workdir / f"{name}.log"
        self.env = {
            **os.environ,
            **names.env(),
            "FRAUD_WEB_PORT": str(self.port),
            "FRAUD_DATA_DIR": str(self.workdir / "faust-data"),
            "FRAUD_KAFKA_BROKER": BROKER,
            "FRAUD_SCHEMA_REGISTRY_URL": REGISTRY,
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> "Worker":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "faust", "-A", "app", "worker", "-l", "info"],
            cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            if "Worker]: Ready" in self.log_text() and self.metrics_text():
                return self
            time.sleep(0.3)
        raise TimeoutError(f"worker not ready in {timeout_s}s:\n{self.log_tail()}")

    def wait_assigned(self, timeout_s: float = 60.0) -> None:
        """Until the consumer has partitions of the transactions topic assigned."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if "Assigned" in self.log_text() or "assigned" in self.log_text():
                return
            time.sleep(0.3)
        raise TimeoutError(f"no partition assignment in {timeout_s}s:\n{self.log_tail()}")

    def metrics_text(self) -> str:
        try:
            return httpx.get(self.url + "/metrics", timeout=2.0).text
        except httpx.HTTPError:
            return ""

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample of the worker's /metrics (0.0 when absent)."""
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        total = 0.0
        for line in self.metrics_text().splitlines():
            if line.startswith("#") or " " not in line:
                continue
            key, value = line.rsplit(" ", 1)
            base, _, rest = key.partition("{")
            if base != name:
                continue
            got = ",".join(sorted(p for p in rest.rstrip("}").split(",") if p)) if rest else ""
            if not labels or all(f'{k}="{v}"' in got for k, v in labels.items()):
                total += float(value)
        return total

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def decoder(record: type):
    """A function that decodes Confluent-framed Avro bytes to a dict through the registry."""
    from app.serialization import ConfluentAvroCodec, make_registry_client

    codec = ConfluentAvroCodec(make_registry_client(REGISTRY), "unused", record.avro_schema_to_python())
    return codec.loads


def read(topic: str, record: type | None = None, expect: int | None = None, timeout_s: float = 60.0,
         idle_s: float = 3.0) -> list[tuple[bytes | None, Any, int, int]]:
    from app.admin import read_topic

    return asyncio.run(read_topic(BROKER, topic, decoder(record) if record else None, expect, timeout_s, idle_s))


def replay(names: Names, rows, **kwargs) -> Any:
    from app.replay import replay as _replay

    kwargs.setdefault("progress", False)
    return asyncio.run(_replay(
        rows, broker=BROKER, registry_url=REGISTRY, transactions_topic=names.transactions,
        labels_topic=names.labels, **kwargs,
    ))


def produce_raw(topic: str, messages: list[tuple[bytes | None, bytes | None]]) -> None:
    """Send raw key/value bytes, as a faulty producer would."""
    from aiokafka import AIOKafkaProducer

    from app.admin import bootstrap_servers

    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(BROKER))
        await producer.start()
        try:
            for key, value in messages:
                await producer.send_and_wait(topic, value=value, key=key)
        finally:
            await producer.stop()

    asyncio.run(go())
