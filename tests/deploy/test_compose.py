"""The deployment files: docker-compose profiles, Prometheus configs, Grafana provisioning, Dockerfile.

``docker-compose config -q`` (Debian's docker-compose 1.29) checks the compose file per profile and
``promtool check config`` the Prometheus configs. Without the binaries these checks are skipped on a
developer's machine and fail under CI (``CI`` set), where they must be installed.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from string import Template

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
PROFILES = ("infrastructure", "ml", "spark", "tools")


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (CI must install it)")
        pytest.skip(f"{name} is not installed")
    return path


def services(profile: str) -> dict:
    """The services that ``--profile <profile>`` enables, from the compose file."""
    spec = yaml.safe_load(COMPOSE.read_text())
    return {name: svc for name, svc in spec["services"].items() if profile in svc.get("profiles", [])}


@pytest.mark.parametrize("profile", PROFILES)
def test_compose_config_is_valid_for_each_profile(profile):
    out = subprocess.run([binary("docker-compose"), "-f", str(COMPOSE), "--profile", profile, "config", "-q"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_profiles_hold_the_services_they_promise():
    assert {"kafka", "schema-registry", "prometheus", "grafana"} <= set(services("infrastructure"))
    assert {"worker", "kafka", "schema-registry"} <= set(services("ml"))
    assert {"spark-master", "spark-worker"} <= set(services("spark"))
    assert {"replay", "kafka", "schema-registry"} <= set(services("tools"))


def test_pinned_images():
    spec = yaml.safe_load(COMPOSE.read_text())
    images = {name: svc["image"] for name, svc in spec["services"].items() if "build" not in svc}
    assert images["kafka"] == "apache/kafka:4.1.1"
    assert images["schema-registry"] == "apicurio/apicurio-registry:3.0.9"
    for name, image in images.items():
        assert ":" in image and not image.endswith(":latest"), (name, image)


def test_every_long_running_service_has_a_healthcheck_and_waits_for_healthy_dependencies():
    spec = yaml.safe_load(COMPOSE.read_text())
    for name, svc in spec["services"].items():
        if name == "replay":  # a one-shot command
            continue
        if name != "spark-worker":
            assert "healthcheck" in svc, name
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert cond == {"condition": "service_healthy"}, (name, dep)
            assert "healthcheck" in spec["services"][dep], dep


def test_worker_points_at_the_compose_services():
    worker = yaml.safe_load(COMPOSE.read_text())["services"]["worker"]
    env = worker["environment"]
    assert env["FRAUD_KAFKA_BROKER"] == "kafka://kafka:29092"
    assert env["FRAUD_SCHEMA_REGISTRY_URL"].startswith("http://schema-registry:8080/")
    assert env["FRAUD_WEB_HOST"] == "0.0.0.0"
    assert "ports" not in worker and "container_name" not in worker  # so that it scales
    assert worker["deploy"]["replicas"] >= 1


def test_prometheus_configs_are_valid(tmp_path):
    promtool = binary("promtool")
    out = subprocess.run([promtool, "check", "config", str(ROOT / "infra/prometheus/prometheus.yml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    local = tmp_path / "prometheus.yml"
    template = (ROOT / "infra/prometheus/prometheus.local.yml.template").read_text()
    local.write_text(Template(template).substitute(TARGETS='["127.0.0.1:6066"]', SCRAPE_INTERVAL="1s",
                                                   RULES=str(ROOT / "infra/prometheus/alerts.yml")))
    out = subprocess.run([promtool, "check", "config", str(local)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_prometheus_scrapes_the_worker_service_on_its_web_port():
    config = yaml.safe_load((ROOT / "infra/prometheus/prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "fraud-worker")
    assert job["metrics_path"] == "/metrics"
    assert job["dns_sd_configs"][0]["names"] == ["worker"] and job["dns_sd_configs"][0]["port"] == 6066


def test_grafana_provisioning_points_at_the_mounted_dashboards_and_prometheus():
    spec = yaml.safe_load(COMPOSE.read_text())
    mounts = {m.split(":")[1]: m.split(":")[0] for m in spec["services"]["grafana"]["volumes"] if m.startswith("./")}
    provider = yaml.safe_load((ROOT / "infra/grafana/provisioning/dashboards/fraud.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert (ROOT / mounts[path]).resolve() == (ROOT / "infra/grafana/dashboards").resolve()
    datasource = yaml.safe_load((ROOT / "infra/grafana/provisioning/datasources/prometheus.yml").read_text())
    ds = datasource["datasources"][0]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    for board in (ROOT / "infra/grafana/dashboards").glob("*.json"):
        data = json.loads(board.read_text())
        uids = {t["datasource"]["uid"] for p in data["panels"] for t in p["targets"]}
        assert uids == {ds["uid"]}, board
        ids = [p["id"] for p in data["panels"]]
        assert len(ids) == len(set(ids)), board


def test_dockerfile_is_slim_pinned_non_root_with_a_metrics_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    worker = text[text.index("AS worker"):]
    assert re.search(r"^USER (?!root)\w+", worker, re.M)
    assert "HEALTHCHECK" in worker and "/metrics" in worker
    assert 'CMD ["faust", "-A", "app", "worker", "-l", "info"]' in worker
    assert text.rstrip().endswith('CMD ["faust", "-A", "app", "worker", "-l", "info"]')  # the default target


def test_dockerignore_lets_in_what_the_image_copies():
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    copied = re.findall(r"^COPY (\S+) ", (ROOT / "Dockerfile").read_text(), re.M)
    assert copied
    for src in copied:
        assert f"!{src.rstrip('/')}" in ignore or f"!{src.rstrip('/')}/" in ignore, src
