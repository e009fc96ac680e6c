"""The deployment files: docker-compose profiles, Prometheus configs, Grafana provisioning, Dockerfile.

``docker-compose config -q`` (Debian's docker-compose 1.29) checks the compose file per profile and
``promtool check config`` the Prometheus configs. Without the binaries these checks are skipped on a
developer's machine and fail under CI (``CI`` set), where they must be installed.

No Docker engine runs the stack here, so what it needs at run time is read from the files: published
ports on loopback unless ``FRAUD_BIND_ADDRESS`` says otherwise, volumes the image's user can write,
Spark containers that share their jobs' files, a driver address the executors can reach, and
connector jars inside the Spark image.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from string import Template

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PROFILES = ("infrastructure", "ml", "spark", "tools")
BIND = "${FRAUD_BIND_ADDRESS:-127.0.0.1}"
SPARK_SERVICES = ("spark-master", "spark-worker", "backfill")


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (CI must install it)")
        pytest.skip(f"{name} is not installed")
    return path


def spec() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def stage(name: str) -> str:
    """The text of one stage of the Dockerfile (from its FROM line to the next)."""
    text = DOCKERFILE.read_text()
    found = re.search(rf"^FROM \S+ AS {re.escape(name)}\n(.*?)(?=^FROM |\Z)", text, re.M | re.S)
    assert found, f"no stage {name} in the Dockerfile"
    return found.group(1)


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
    assert set(SPARK_SERVICES) <= set(services("spark"))
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
        if name in ("replay", "backfill"):  # one-shot commands
            continue
        assert "healthcheck" in svc, name
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert cond == {"condition": "service_healthy"}, (name, dep)
            assert "healthcheck" in spec["services"][dep], dep


def dockerfile_healthcheck() -> list[str]:
    """The command of the worker stage's HEALTHCHECK."""
    worker = DOCKERFILE.read_text().split("AS worker", 1)[1]
    return json.loads(re.search(r"^HEALTHCHECK .*\\\n\s*CMD (.*)$", worker, re.M).group(1))


@contextmanager
def readyz_server():
    """A web server on a free local port answering ``/readyz`` with ``state["status"]`` (anything
    else: 404); yields its port and ``state``, which also lists the paths asked."""
    state = {"status": 503, "paths": []}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            state["paths"].append(self.path)
            self.send_response(state["status"] if self.path == "/readyz" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], state
    finally:
        server.shutdown()
        server.server_close()


def test_worker_healthchecks_pass_only_while_readyz_says_ready():
    """The image's and compose's healthchecks run against a stand-in worker: they fail while its
    /readyz answers 503 and pass once it answers 200."""
    compose = yaml.safe_load(COMPOSE.read_text())["services"]["worker"]["healthcheck"]["test"]
    assert compose[0] == "CMD" and dockerfile_healthcheck()[0] == "python"
    no_proxy = {key: value for key, value in os.environ.items() if not key.lower().endswith("_proxy")}
    with readyz_server() as (port, state):
        checks = {"Dockerfile": (dockerfile_healthcheck(), {"FRAUD_WEB_PORT": str(port)}),
                  "docker-compose.yml": ([arg.replace(":6066/", f":{port}/") for arg in compose[1:]], {})}
        for name, (argv, env) in checks.items():
            for status, passes in ((503, False), (200, True)):
                state["status"], state["paths"] = status, []
                run = subprocess.run([sys.executable, *argv[1:]], env={**no_proxy, **env}, capture_output=True,
                                     text=True, timeout=60)
                assert (run.returncode == 0) == passes, (name, status, run.stderr)
                assert state["paths"] == ["/readyz"], name


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


def test_dockerfile_is_slim_pinned_non_root_with_a_readiness_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    worker = text[text.index("AS worker"):]
    assert re.search(r"^USER (?!root)\w+", worker, re.M)
    assert "/readyz'" in dockerfile_healthcheck()[-1]  # 503 until the worker is ready
    assert 'CMD ["faust", "-A", "app", "worker", "-l", "info"]' in worker
    assert text.rstrip().endswith('CMD ["faust", "-A", "app", "worker", "-l", "info"]')  # the default target


def test_dockerignore_lets_in_what_the_image_copies():
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    copied = re.findall(r"^COPY (?!--from=)(\S+) ", DOCKERFILE.read_text(), re.M)  # not copies between stages
    assert copied
    for src in copied:
        assert f"!{src.rstrip('/')}" in ignore or f"!{src.rstrip('/')}/" in ignore, src


# --- exposure ------------------------------------------------------------------------------------
def test_published_ports_listen_on_loopback_unless_told_otherwise():
    published = {name: svc["ports"] for name, svc in spec()["services"].items() if "ports" in svc}
    assert {"kafka", "schema-registry", "prometheus", "grafana", "spark-master"} <= set(published)
    for name, ports in published.items():
        for port in ports:
            assert isinstance(port, str) and port.startswith(BIND + ":"), (name, port)
            assert re.fullmatch(r"\d+:\d+", port[len(BIND) + 1:]), (name, port)
    header = COMPOSE.read_text().split("\nx-", 1)[0]
    assert "FRAUD_BIND_ADDRESS" in header and "127.0.0.1" in header


@pytest.mark.parametrize("env, address", [({}, "127.0.0.1"), ({"FRAUD_BIND_ADDRESS": "0.0.0.0"}, "0.0.0.0")])
def test_docker_compose_resolves_the_bind_address(env, address):
    compose = binary("docker-compose")
    environ = {k: v for k, v in os.environ.items() if k != "FRAUD_BIND_ADDRESS"} | env
    for profile in ("infrastructure", "spark"):
        out = subprocess.run([compose, "-f", str(COMPOSE), "--profile", profile, "config"], cwd=ROOT, env=environ,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        resolved = yaml.safe_load(out.stdout)["services"]
        ports = [p for svc in resolved.values() for p in svc.get("ports", [])]
        assert ports
        for port in ports:  # docker-compose 1.29 prints "127.0.0.1:9092:9092/tcp"
            host = port["host_ip"] if isinstance(port, dict) else port.rsplit(":", 2)[0]
            assert host == address, (profile, port)


# --- volumes the image's user can write ------------------------------------------------------------
def image_user_folders() -> tuple[str, set[str], list[str]]:
    """The image's user, the folders the base stage creates, and the folders it gives to that user."""
    base = stage("base")
    created = {p for run in re.findall(r"mkdir -p ([^&\n]+)", base) for p in run.split()}
    user = re.search(r"useradd .*?--uid \d+ .*?(\w+) \\?$", base, re.M)
    owner = user.group(1) if user else None
    owned = re.findall(rf"chown -R {owner}:\w+ (\S+)", base)
    return owner, created, owned


def test_named_volumes_of_the_fraud_images_are_writable_by_their_user():
    """A new named volume takes the owner of the image folder it is mounted on (Docker copies it),
    so each mount point of a service built from the Dockerfile must exist in the image and belong
    to the user the image runs as."""
    owner, created, owned = image_user_folders()
    for target in ("worker", "spark"):
        assert re.search(rf"^USER {owner}$", stage(target), re.M), target
    declared = set(spec()["volumes"])
    checked = 0
    for name, svc in spec()["services"].items():
        if not svc.get("image", "").startswith("fraudstream"):
            continue
        for mount in svc.get("volumes", []):
            source, path = mount.split(":")[:2]
            if source in declared:
                assert path in created, (name, mount, "not created in the image")
                assert any(path == o or path.startswith(o.rstrip("/") + "/") for o in owned), (name, mount, owned)
                checked += 1
    assert checked >= 7  # replay's dataset, and two volumes in each of the three Spark containers


def test_replay_caches_the_dataset_on_its_volume():
    replay = spec()["services"]["replay"]
    assert "dataset:" + replay["environment"]["FRAUD_DATASET_DIR"] in replay["volumes"]


# --- Spark ---------------------------------------------------------------------------------------
def test_spark_containers_share_the_volumes_their_jobs_read_and_write():
    services = spec()["services"]
    mounts = {name: set(services[name]["volumes"]) for name in SPARK_SERVICES}
    assert mounts["spark-master"] == mounts["spark-worker"] == mounts["backfill"]
    assert {"backfill:/var/lib/fraud/backfill", "dataset:/var/lib/fraud/dataset"} <= mounts["backfill"]
    driver = services["backfill"]
    assert driver["working_dir"] == "/var/lib/fraud/backfill"  # a relative --output lands on the shared volume
    for name in SPARK_SERVICES:
        assert services[name]["environment"]["FRAUD_DATASET_DIR"] == "/var/lib/fraud/dataset", name


def spark_env_file() -> tuple[Path, str]:
    """The repository's spark-env.sh and where the spark stage puts it (its SPARK_CONF_DIR)."""
    spark = stage("spark")
    conf_dir = re.search(r"SPARK_CONF_DIR=(\S+)", spark).group(1)
    copied = re.search(rf"^COPY (\S+) {re.escape(conf_dir)}/spark-env\.sh$", spark, re.M)
    assert copied, f"the spark stage puts no spark-env.sh in {conf_dir}"
    return ROOT / copied.group(1), conf_dir


def test_spark_processes_advertise_the_container_address():
    """spark-class sources $SPARK_CONF_DIR/spark-env.sh before every Spark JVM of the image (the
    driver's too); it must export the container's address, overriding the 127.0.0.1 the backfill
    session sets by default, so that executors on spark-worker reach the driver."""
    env_file, _ = spark_env_file()
    out = subprocess.run(["bash", "-c", f'. "{env_file}" && echo "$SPARK_LOCAL_IP $SPARK_LOCAL_HOSTNAME"'],
                         env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    own = socket.gethostbyname(socket.gethostname())  # what a container resolves its own name to
    assert out.stdout.split() == [own, own]
    services = spec()["services"]
    for name in SPARK_SERVICES:  # spark-env.sh would override them anyway: no misleading settings
        env = services[name]["environment"]
        assert "SPARK_LOCAL_IP" not in env and "SPARK_LOCAL_HOSTNAME" not in env, name
    driver = services["backfill"]
    assert driver["environment"]["FRAUD_SPARK_MASTER"] == "spark://spark-master:7077"
    assert driver["entrypoint"] == ["python", "-m", "app.backfill"]
    assert {"spark-master", "spark-worker"} <= set(driver["depends_on"])


def test_spark_image_holds_the_connector_jars():
    """The jobs find their Kafka and Avro connectors in FRAUD_SPARK_JARS_DIR, put there at build time
    by Maven from infra/pom.xml (app/backfill/jars.py), instead of fetching them when they run."""
    text = DOCKERFILE.read_text()
    fetch = re.search(r"^FROM \S+ AS (\S+)\n(?:.*\n)*?COPY infra/pom\.xml (\S+)\n"
                      r"RUN mvn .*-f \2 -P spark dependency:copy-dependencies -DoutputDirectory=(\S+)$", text, re.M)
    assert fetch, "no build stage copies the Spark connector jars with Maven"
    jars_stage, out_dir = fetch.group(1), fetch.group(3)
    spark = stage("spark")
    copied = re.search(rf"^COPY --from={re.escape(jars_stage)} {re.escape(out_dir)} (\S+)$", spark, re.M)
    assert copied, "the spark stage does not copy the jars"
    assert re.search(rf"FRAUD_SPARK_JARS_DIR={re.escape(copied.group(1))}\b", spark)
    assert "!infra/pom.xml" in (ROOT / ".dockerignore").read_text().splitlines()
    pom = re.search(r"<spark\.version>([^<]+)</spark\.version>", (ROOT / "infra/pom.xml").read_text()).group(1)
    pin = re.search(r'"pyspark==([^"]+)"', (ROOT / "setup.py").read_text()).group(1)
    assert pom == pin  # app.backfill.jars only accepts jars of the installed pyspark's version


def test_spark_master_healthcheck_knocks_where_the_master_listens():
    """Spark's master binds its RPC port to the address of ``--host`` only (not to 127.0.0.1)."""
    master = spec()["services"]["spark-master"]
    host = master["command"][master["command"].index("--host") + 1]
    port = master["command"][master["command"].index("--port") + 1]
    assert f"/dev/tcp/{host}/{port}" in " ".join(master["healthcheck"]["test"])


def test_spark_worker_healthcheck_knocks_where_its_web_ui_listens():
    """A worker's web UI binds to SPARK_LOCAL_IP (the container's address, from spark-env.sh)."""
    services = spec()["services"]
    worker = services["spark-worker"]
    port = worker["command"][worker["command"].index("--webui-port") + 1]
    spark_env_file()  # the image has it where SPARK_CONF_DIR says
    check = worker["healthcheck"]["test"][-1].replace("$$", "$")  # compose's escape for a literal $
    assert check == f'. "$SPARK_CONF_DIR/spark-env.sh" && exec 3<>/dev/tcp/$SPARK_LOCAL_IP/{port}'
    assert services["backfill"]["depends_on"]["spark-worker"] == {"condition": "service_healthy"}
