"""``infra/setup.sh --system`` stops only the Prometheus service it has just installed.

The script runs from a copy of the repository's layout, with a PATH of stubs that record their
calls: ``id`` says root, ``apt-get`` installs nothing, ``systemctl``/``service``/``pkill``/``killall``
only log. The virtual environment is a stub with a matching stamp, so nothing is installed.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from tests.deploy.test_compose import ROOT

TOOLS = ("java", "mvn", "curl", "openssl", "prometheus", "docker-compose")
COREUTILS = ("dirname", "cat", "sha256sum", "cut", "rm", "touch")


def run_setup(tmp_path: Path, present: set[str], systemctl_works: bool = True,
              service_works: bool = True) -> tuple[list[str], str]:
    """Run a copy of setup.sh --system with ``present`` of :data:`TOOLS` on the PATH: the stubs' calls
    and the script's messages."""
    repo = tmp_path / "repo"
    (repo / "infra").mkdir(parents=True)
    shutil.copy(ROOT / "infra" / "setup.sh", repo / "infra" / "setup.sh")
    (repo / "setup.py").write_text("# stub\n")
    (repo / ".venv" / "bin").mkdir(parents=True)
    (repo / ".venv" / "bin" / "python").write_text("#!/bin/sh\nexit 0\n")
    (repo / ".venv" / "bin" / "python").chmod(0o755)
    stamp = hashlib.sha256((repo / "setup.py").read_bytes()).hexdigest()[:16]
    (repo / ".venv" / f".installed-{stamp}").touch()

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    for tool in COREUTILS:
        (bin_dir / tool).symlink_to(shutil.which(tool))

    def stub(name: str, body: str = "exit 0") -> None:
        path = bin_dir / name
        path.write_text(f'#!/bin/bash\necho "{name} $*" >> "{log}"\n{body}\n')
        path.chmod(0o755)

    stub("id", 'echo 0')
    stub("apt-get")
    stub("systemctl", "exit 0" if systemctl_works else "exit 1")
    stub("service", "exit 0" if service_works else "exit 1")
    stub("pkill")
    stub("killall")
    for tool in present:
        stub(tool)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    out = subprocess.run([shutil.which("bash"), str(repo / "infra" / "setup.sh"), "--system"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return (log.read_text().splitlines() if log.exists() else []), out.stderr


def test_installing_prometheus_stops_its_service_and_nothing_else(tmp_path):
    calls, _ = run_setup(tmp_path, present=set(TOOLS) - {"prometheus"})
    assert any(c.startswith("apt-get install") and " prometheus" in c for c in calls), calls
    assert "systemctl stop prometheus" in calls
    assert not [c for c in calls if c.startswith(("pkill", "killall", "service"))], calls


def test_without_systemd_the_debian_service_script_stops_it(tmp_path):
    calls, _ = run_setup(tmp_path, present=set(TOOLS) - {"prometheus"}, systemctl_works=False)
    assert "service prometheus stop" in calls
    assert not [c for c in calls if c.startswith(("pkill", "killall"))], calls


def test_a_service_that_cannot_be_stopped_is_reported_not_killed(tmp_path):
    calls, messages = run_setup(tmp_path, present=set(TOOLS) - {"prometheus"}, systemctl_works=False,
                                service_works=False)
    assert "service prometheus stop" in calls
    assert not [c for c in calls if c.startswith(("pkill", "killall"))], calls
    assert "could not stop the prometheus service" in messages


def test_a_prometheus_already_there_is_left_alone(tmp_path):
    calls, _ = run_setup(tmp_path, present=set(TOOLS) - {"docker-compose"})
    assert any(c.startswith("apt-get install") and "docker-compose" in c for c in calls), calls
    assert not [c for c in calls if c.startswith(("systemctl", "service", "pkill", "killall"))], calls


def test_no_script_stops_processes_by_name():
    for script in (ROOT / "infra").glob("*.sh"):
        text = script.read_text()
        assert "pkill" not in text and "killall" not in text, script
