"""The alert rules (``infra/prometheus/alerts.yml``): their unit tests, where they are loaded, what they read.

``promtool test rules`` runs ``alerts.test.yml`` (fixed series, expected alerts). Without promtool
(Debian's ``prometheus`` package, ``infra/setup.sh --system``) the promtool tests are skipped on a
developer's machine and fail under CI.
"""
from __future__ import annotations

import re
import subprocess
from string import Template

import yaml

from app import metrics
from tests.deploy.test_compose import COMPOSE, ROOT, binary

PROMETHEUS = ROOT / "infra" / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
ALERTS = {"FraudWorkerDown", "FraudNoWorker", "FraudWorkerRestarted", "FraudConsumerLagGrowing", "FraudDeadLetters",
          "FraudModelErrorDrift", "FraudDrift", "FraudPrAucLow"}


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_unit_tests_of_the_rules_pass():
    out = subprocess.run([binary("promtool"), "test", "rules", str(PROMETHEUS / "alerts.test.yml")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_every_alert_has_a_unit_test():
    tested = set(re.findall(r"alertname: (\w+)", (PROMETHEUS / "alerts.test.yml").read_text()))
    assert {rule["alert"] for rule in rules()} == ALERTS == tested


def test_rules_read_only_metrics_the_worker_exports():
    """Every ``fraud_*`` name in an expression is a sample name of a family of :mod:`app.metrics`."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"),
                "gauge": ("",)}
    exported = {family.name + suffix for family in metrics.REGISTRY.collect() for suffix in suffixes[family.type]}
    used = {name for rule in rules() for name in re.findall(r"\b(fraud_\w+)", rule["expr"])}
    assert used, "no fraud_ metric in the rules"
    assert used <= exported, sorted(used - exported)
    assert {"fraud_consumer_lag", "fraud_dead_letters_total", "fraud_drift_alerts_total",
            "fraud_prequential_metric", "fraud_score_created"} <= used


def test_both_prometheus_configs_load_the_rules(tmp_path):
    compose_config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert compose_config["rule_files"] == ["alerts.yml"]  # read from the config file's folder
    template = (PROMETHEUS / "prometheus.local.yml.template").read_text()
    local = yaml.safe_load(Template(template).substitute(TARGETS='["127.0.0.1:6066"]', SCRAPE_INTERVAL="1s",
                                                          RULES=str(RULES)))
    assert local["rule_files"] == [str(RULES)]


def test_compose_mounts_the_rules_next_to_the_config():
    prometheus = yaml.safe_load(COMPOSE.read_text())["services"]["prometheus"]
    config = next(a.split("=", 1)[1] for a in prometheus["command"] if a.startswith("--config.file="))
    mounts = {m.split(":")[1]: m.split(":")[0] for m in prometheus["volumes"] if m.startswith("./")}
    assert (ROOT / mounts[config]).resolve() == (PROMETHEUS / "prometheus.yml").resolve()
    rules_in_container = config.rsplit("/", 1)[0] + "/alerts.yml"
    assert (ROOT / mounts[rules_in_container]).resolve() == RULES.resolve()
