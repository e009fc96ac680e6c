"""A worker as a subprocess: start it, wait until it is ready, read its metrics, stop or kill it.

Used by the demo run, the benchmarks and the integration tests.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WorkerProcess:
    """``faust -A app worker`` in a subprocess, with its own web port and state folder.

    ``env`` adds ``FRAUD_*`` settings to the current environment.
    """

    def __init__(self, workdir: Path, env: dict[str, str] | None = None, name: str = "worker"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.name = name
        self._log_start = 0  # where the current process's part of the (appended) log starts
        self.log_path = self.workdir / f"{name}.log"
        self.env = {
            **os.environ,
            "FRAUD_WEB_PORT": str(self.port),
            "FRAUD_DATA_DIR": str(self.workdir / "faust-data"),
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> "WorkerProcess":
        """Launch the worker and wait until it is ready."""
        return self.launch().wait_ready(timeout_s)

    def launch(self) -> "WorkerProcess":
        """Start the process without waiting (see :meth:`wait_ready`)."""
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "faust", "-A", "app", "worker", "-l", "info"],
                cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> "WorkerProcess":
        """Until the worker says it is ready and serves /metrics; raises if it exits first."""
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            if "Worker]: Ready" in self.run_log_text() and self.metrics_text():
                return self
            time.sleep(0.3)
        raise TimeoutError(f"worker not ready in {timeout_s}s:\n{self.log_tail()}")

    def wait_assigned(self, timeout_s: float = 60.0) -> None:
        """Until the consumer has partitions of the transactions topic assigned."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.run_log_text()
            if "Assigned" in text or "assigned" in text:
                return
            time.sleep(0.3)
        raise TimeoutError(f"no partition assignment in {timeout_s}s:\n{self.log_tail()}")

    def metrics_text(self) -> str:
        try:
            return httpx.get(self.url + "/metrics", timeout=2.0).text
        except httpx.HTTPError:
            return ""

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the worker's /metrics samples named ``name`` whose labels include ``labels``
        (0.0 when there are none)."""
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

    def run_log_text(self) -> str:
        """The log of the current process only (the log file is appended to by every start)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_start)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def children(self) -> list[int]:
        """The pids of the worker's child processes (its model process, by default)."""
        if self.proc is None:
            return []
        return [int(pid) for task in Path(f"/proc/{self.proc.pid}/task").iterdir()
                for pid in (task / "children").read_text().split()]

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
