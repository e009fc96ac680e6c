"""A real Prometheus scrapes a worker during a replay.

One replay per module (synthetic rows with a concept change, labels sent late, a few undecodable
messages) while Prometheus (Debian's ``prometheus`` binary, on loopback, config from
``infra/prometheus/prometheus.local.yml.template``) scrapes the worker every second. Then:

* every metric family of :mod:`app.metrics` read back through Prometheus's HTTP API holds the
  replay's numbers (events in == transactions sent, scores out == transactions sent, dead letters ==
  bad messages sent, anomalies == records on the anomalies topic, ...);
* every query of the Grafana dashboard (panels and annotations) returns data from that Prometheus.

A metric that no code in ``app/`` updates yet (its agent has not landed) is reported as skipped, with
its name, instead of being expected: the moment some module updates it, its checks apply.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from string import Template

import httpx
import pytest

import settings
from app import metrics as app_metrics
from app.data.synthetic import generate
from app.process import ROOT, free_port
from app.records import Anomaly, DriftAlert, Score
from app.testing.kafka import committed_and_end, delete_topics, produce_raw, read
from app.testing.names import Names
from app.testing.replay import replay
from app.testing.worker import Worker

PROMETHEUS_TEMPLATE = ROOT / "infra" / "prometheus" / "prometheus.local.yml.template"
DASHBOARDS = sorted((ROOT / "infra" / "grafana" / "dashboards").glob("*.json"))
RATE_INTERVAL = "15s"  # what Grafana's $__rate_interval becomes for a 1 s scrape interval and short ranges

ROWS = 4000
RATE = 800.0  # events/s: the replay spans several scrapes
LABEL_DELAY_EVENTS = 100
BAD_MESSAGES = [(b"bad-1", b"\x07not avro at all"), (b"bad-2", b"\x00\x00")]
BAD_REASONS = {"bad-magic-byte", "too-short"}
# the lag every second, and checkpoints within the replay, so that those metrics move too
WORKER_ENV = {"FRAUD_CONSUMER_LAG_INTERVAL_S": "1", "FRAUD_CHECKPOINT_EVERY_EVENTS": "1000",
              "FRAUD_ANOMALY_CHECKPOINT_EVERY_EVENTS": "1000", "FRAUD_DRIFT_CHECKPOINT_EVERY_VALUES": "4000",
              "FRAUD_PREQUENTIAL_REPORT_INTERVAL_S": "1", "FRAUD_COMMIT_PROGRESS_INTERVAL_S": "1"}

if not shutil.which("prometheus") and not os.environ.get("CI"):
    pytest.skip("no prometheus binary (apt-get install prometheus)", allow_module_level=True)


# --- Prometheus on loopback ----------------------------------------------------------------------
class PrometheusServer:
    """``prometheus`` in a subprocess on 127.0.0.1, scraping ``targets``; its data in ``workdir``."""

    def __init__(self, workdir: Path, targets: list[str], scrape_interval: str = "1s") -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config = self.workdir / "prometheus.yml"
        self.config.write_text(Template(PROMETHEUS_TEMPLATE.read_text()).substitute(
            TARGETS=json.dumps(targets), SCRAPE_INTERVAL=scrape_interval, RULES=PROMETHEUS_TEMPLATE.parent / "alerts.yml"))
        self.log_path = self.workdir / "prometheus.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> "PrometheusServer":
        binary = shutil.which("prometheus") or "/usr/bin/prometheus"
        self.proc = subprocess.Popen(
            [binary, f"--config.file={self.config}", f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT, cwd=self.workdir,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            try:
                if httpx.get(self.url + "/-/ready", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"prometheus not ready in {timeout_s}s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _api(self, path: str, **params) -> list[dict]:
        body = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10.0).json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def query(self, expr: str) -> list[dict]:
        """An instant query at the latest scrape: [{'metric': {...}, 'value': [t, 'v']}, ...]."""
        return self._api("query", query=expr)

    def query_range(self, expr: str, start: float, end: float, step: str = "1s") -> list[dict]:
        return self._api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=step)

    def value(self, expr: str) -> float | None:
        """The single value of a query that yields one series (None when it yields none)."""
        result = self.query(expr)
        assert len(result) <= 1, f"{expr} gave {len(result)} series"
        return float(result[0]["value"][1]) if result else None

    def targets(self) -> list[dict]:
        return httpx.get(f"{self.url}/api/v1/targets", timeout=10.0).json()["data"]["activeTargets"]


def wait_for(check, timeout_s: float = 60.0, every_s: float = 0.5):
    """Poll ``check()`` until it returns a truthy value (returned) or time runs out (the last value)."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(every_s)


# --- which metric families are live --------------------------------------------------------------
def metric_families() -> dict[str, str]:
    """Family name (as Prometheus shows it, e.g. ``fraud_events_in_total``) -> attribute in app.metrics."""
    from prometheus_client.metrics import MetricWrapperBase

    families = {}
    for attr, obj in vars(app_metrics).items():
        if isinstance(obj, MetricWrapperBase):
            name = obj._name + ("_total" if obj._type == "counter" else "")
            families[name] = attr
    return families


FAMILIES = metric_families()
_SOURCES = {path: path.read_text() for path in (ROOT / "app").rglob("*.py") if path.name != "metrics.py"}


def updated_by(attr: str) -> list[str]:
    """The modules of ``app/`` that use ``app.metrics.<attr>`` (by ``metrics.X`` or an import of X)."""
    use = re.compile(rf"\bmetrics\.{attr}\b|from app\.metrics import[^\n]*\b{attr}\b")
    return sorted(str(path.relative_to(ROOT)) for path, text in _SOURCES.items() if use.search(text))


def family_of(name: str) -> str | None:
    """The family of a series name in a query (``fraud_score_bucket`` -> ``fraud_score``)."""
    if name in FAMILIES:
        return name
    for suffix in ("_bucket", "_count", "_sum", "_created", "_total"):
        if name.endswith(suffix) and name[: -len(suffix)] in FAMILIES:
            return name[: -len(suffix)]
    return None


def require_live(*families: str) -> None:
    """Skip (naming the metric) when no code updates one of ``families`` yet."""
    idle = [f for f in families if not updated_by(FAMILIES[f])]
    if idle:
        pytest.skip(f"not updated by any module of app/ yet: {', '.join(idle)}")


# --- the replay, scraped -------------------------------------------------------------------------
@dataclass
class Run:
    names: Names
    worker: Worker
    prometheus: PrometheusServer
    started: float
    finished: float
    transactions: int
    labels: int
    anomalies_on_topic: int
    drift_alerts_on_topic: int

    def q(self, expr: str) -> float | None:
        return self.prometheus.value(expr)


@pytest.fixture(scope="module")
def run(stack, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("prometheus")
    names = Names("prom")
    worker = Worker(names, workdir / "worker", WORKER_ENV).start()
    prometheus = PrometheusServer(workdir / "prometheus", [f"127.0.0.1:{worker.port}"]).start()
    try:
        worker.wait_assigned()
        started = time.time()
        assert wait_for(lambda: any(t["health"] == "up" for t in prometheus.targets()), 30), prometheus.targets()
        produce_raw(names.transactions, BAD_MESSAGES)
        # event times advance at the replay's rate from "now": event time -> score latency is real
        rows = generate(ROWS, seed=11, drift_at=[ROWS // 2], mean_gap_s=1.0 / RATE)
        sent = replay(names, rows, rate=RATE, labels="delayed", label_delay_events=LABEL_DELAY_EVENTS)
        assert sent.transactions == ROWS and sent.labels == ROWS
        scores = read(names.scores, Score, expect=ROWS, timeout_s=240)
        assert len(scores) == ROWS, worker.log_tail()
        anomalies = read(names.anomalies, Anomaly, timeout_s=20, idle_s=3)
        drift_alerts = read(names.drift_alerts, DriftAlert, timeout_s=20, idle_s=3)
        scores_out = f'sum(fraud_events_out_total{{topic="{names.scores}"}})'
        assert wait_for(lambda: prometheus.value(scores_out) == ROWS, 60), prometheus.value(scores_out)
        time.sleep(3)  # a few more scrapes: the lag timer and the label path settle
        yield Run(names, worker, prometheus, started, time.time(), sent.transactions, sent.labels,
                  len(anomalies), len(drift_alerts))
    finally:
        prometheus.stop()
        worker.stop()
        delete_topics(names)


def test_prometheus_scrapes_the_worker(run):
    targets = run.prometheus.targets()
    assert [t["health"] for t in targets] == ["up"], targets
    assert run.q('up{job="fraud-worker"}') == 1.0


# --- every metric family holds the replay's numbers ----------------------------------------------
def check_events_in(run: Run) -> None:
    assert run.q(f'sum(fraud_events_in_total{{topic="{run.names.transactions}"}})') == run.transactions
    labels_in = run.q(f'sum(fraud_events_in_total{{topic="{run.names.labels}"}})')
    if labels_in is not None:  # an agent reads the labels topic: every label counted once
        assert labels_in == run.labels


def check_agent_events(run: Run) -> None:
    """Each agent is done with every transaction once (the anomaly and drift work on the scoring
    agent's batches), and the drift agent over scores with every score (it may still be on the last)."""
    for agent in ("scoring", "anomaly", "drift-transactions"):
        assert run.q(f'sum(fraud_agent_events_total{{agent="{agent}"}})') == run.transactions, agent
    scores = 'sum(fraud_agent_events_total{agent="drift-scores"})'
    assert wait_for(lambda: run.q(scores) == run.transactions, 30), run.q(scores)


def check_events_out(run: Run) -> None:
    n = run.names
    assert run.q(f'sum(fraud_events_out_total{{topic="{n.scores}"}})') == run.transactions
    assert run.q(f'sum(fraud_events_out_total{{topic="{n.dead_letters}"}})') == len(BAD_MESSAGES)
    for topic, on_topic in ((n.anomalies, run.anomalies_on_topic), (n.drift_alerts, run.drift_alerts_on_topic)):
        assert (run.q(f'sum(fraud_events_out_total{{topic="{topic}"}})') or 0) == on_topic, topic


def check_dead_letters(run: Run) -> None:
    result = run.prometheus.query(f'fraud_dead_letters_total{{topic="{run.names.transactions}"}}')
    assert {r["metric"]["reason"] for r in result} == BAD_REASONS
    assert sum(float(r["value"][1]) for r in result) == len(BAD_MESSAGES)


def check_consumer_lag(run: Run) -> None:
    expr = f'fraud_consumer_lag{{topic="{run.names.transactions}"}}'
    assert wait_for(lambda: len(run.prometheus.query(expr)) == settings.TOPIC_PARTITIONS, 20), \
        run.prometheus.query(expr)
    # everything sent was processed and committed: no partition is behind
    assert wait_for(lambda: all(float(r["value"][1]) == 0 for r in run.prometheus.query(expr)), 20), \
        run.prometheus.query(expr)


def check_committed_offset(run: Run) -> None:
    # every message of the (new) transactions topic, valid or dead-lettered, was committed
    expr = f'sum(fraud_committed_offset{{topic="{run.names.transactions}"}})'
    assert wait_for(lambda: run.q(expr) == run.transactions + len(BAD_MESSAGES), 20), run.q(expr)


def check_consume_to_produce(run: Run) -> None:
    assert run.q("sum(fraud_consume_to_produce_seconds_count)") == run.transactions
    assert run.q("sum(fraud_consume_to_produce_seconds_sum)") > 0


def check_event_to_score(run: Run) -> None:
    assert run.q("sum(fraud_event_to_score_seconds_count)") == run.transactions
    # event times are "now" at send time: the mean latency is real and below the replay's length
    mean = run.q("sum(fraud_event_to_score_seconds_sum) / sum(fraud_event_to_score_seconds_count)")
    assert 0 < mean < run.finished - run.started


def check_fraud_score(run: Run) -> None:
    assert run.q("sum(fraud_score_count)") == run.transactions


def check_decisions(run: Run) -> None:
    assert run.q("sum(fraud_decisions_total)") == run.transactions


def check_labels(run: Run) -> None:
    assert run.q("sum(fraud_labels_total)") == run.labels


def check_labels_pending(run: Run) -> None:
    # every label has arrived: nothing is left waiting
    assert wait_for(lambda: run.q("sum(fraud_labels_pending)") == 0, 20), (
        run.q("sum(fraud_labels_pending)"), run.prometheus.query("fraud_labels_total"))


def check_label_delay(run: Run) -> None:
    # one observation per label learned (a parked one when its transaction is scored); each label is sent
    # LABEL_DELAY_EVENTS transactions after its own, whose event times are seconds apart: the delays are real
    learned = run.q('sum(fraud_labels_total{outcome="learned"})') + \
        (run.q('sum(fraud_parked_labels_total{event="learned"})') or 0)
    assert run.q("sum(fraud_label_delay_seconds_count)") == learned > 0
    assert run.q("sum(fraud_label_delay_seconds_sum)") > 0


def check_events_learned(run: Run) -> None:
    learned = run.q("sum(fraud_model_events_learned)")
    assert 0 < learned <= run.transactions
    if updated_by("LABELS"):
        # a label that came before its transaction is learned when that transaction is scored
        assert learned == run.q('sum(fraud_labels_total{outcome="learned"})') + \
            (run.q('sum(fraud_parked_labels_total{event="learned"})') or 0)


def check_model_version(run: Run) -> None:
    result = run.prometheus.query("fraud_model_version_info")
    assert result and all(float(r["value"][1]) == 1 for r in result), result
    assert all(r["metric"].get("version") for r in result)


def check_prequential(run: Run) -> None:
    result = run.prometheus.query("fraud_prequential_metric")
    names = {r["metric"]["metric"].lower() for r in result}
    assert any("roc" in m for m in names) and any("pr" in m and "roc" not in m for m in names), names
    aucs = {r["metric"]["metric"]: float(r["value"][1]) for r in result if "auc" in r["metric"]["metric"].lower()}
    assert aucs and all(0.0 <= v <= 1.0 for v in aucs.values() if not math.isnan(v)), aucs


def check_checkpoints(run: Run) -> None:
    assert run.q("sum(fraud_checkpoints_total)") > 0


def check_checkpoint_seconds(run: Run) -> None:
    assert run.q("sum(fraud_checkpoint_seconds_count)") == run.q("sum(fraud_checkpoints_total)")
    assert run.q("sum(fraud_checkpoint_seconds_sum)") > 0


def check_checkpoint_bytes(run: Run) -> None:
    assert run.q("min(fraud_checkpoint_bytes)") > 1000  # a model, not an empty record


def check_anomalies(run: Run) -> None:
    assert run.q("sum(fraud_anomalies_total)") == run.anomalies_on_topic


def check_anomaly_score(run: Run) -> None:
    assert run.q("sum(fraud_anomaly_score_count)") == run.transactions


def check_anomaly_events_seen(run: Run) -> None:
    assert run.q("sum(fraud_anomaly_events_seen)") == run.transactions


def check_anomaly_checkpoints(run: Run) -> None:
    # each checkpoint comes after at least 1,000 more events of its partition (WORKER_ENV)
    assert 0 < run.q("sum(fraud_anomaly_checkpoints_total)") <= run.transactions // 1000


def check_drift_checkpoints(run: Run) -> None:
    # each checkpoint comes after at least 4,000 more values of its partition's monitor (WORKER_ENV):
    # the feature monitors get one value per monitored feature of each transaction
    features = run.q('sum(fraud_drift_checkpoints_total{monitor="features"})')
    assert features and 0 < features <= run.transactions * len(settings.DRIFT_FEATURES) // 4000


def check_drift_challenger_events(run: Run) -> None:
    # the run's mitigation is the default, none: no challenger runs and the gauge is not exported
    assert settings.DRIFT_MITIGATION == "none" and "FRAUD_DRIFT_MITIGATION" not in WORKER_ENV
    assert run.prometheus.query("fraud_drift_challenger_events") == []


def check_caught_up(run: Run) -> None:
    # each agent's state reports its catch-up once per partition; a run without a crash reads nothing back
    states = {r["metric"]["state"] for r in run.prometheus.query("fraud_caught_up_events_total")}
    assert states == {"model", "anomaly", "drift-features", "drift-scores"}, states
    assert run.q("sum(fraud_caught_up_events_total)") == 0


def check_label_waits(run: Run) -> None:
    # labels that waited for their transaction: never longer than the batch's bound (then parked), found or gone past
    result = run.prometheus.query("fraud_label_waits_total")
    outcomes = {r["metric"]["outcome"]: float(r["value"][1]) for r in result}
    assert set(outcomes) <= {"found", "passed", "ahead", "idle", "timeout"}, outcomes
    assert sum(outcomes.values()) <= run.labels


def check_read_back_short(run: Run) -> None:
    # a run without a crash reads nothing back, so no read back stops short
    assert not run.q("sum(fraud_read_back_short_total)")


def check_state_rejected(run: Run) -> None:
    # every checkpoint the worker reads is one it signed: none is refused
    assert not run.q("sum(fraud_state_rejected_total)")


def check_parked_labels(run: Run) -> None:
    # a label parked (it came before its transaction) is counted once as such among the labels, and
    # learned or expired at most once; none is left parked once every transaction has come
    parked = run.q('sum(fraud_parked_labels_total{event="parked"})') or 0
    assert parked == (run.q('sum(fraud_labels_total{outcome="parked"})') or 0)
    done = (run.q('sum(fraud_parked_labels_total{event="learned"})') or 0) \
        + (run.q('sum(fraud_parked_labels_total{event="expired"})') or 0)
    assert done <= parked


def check_labels_parked(run: Run) -> None:
    # every transaction has come: no label is still parked
    assert wait_for(lambda: not run.q("sum(fraud_labels_parked)"), 20), run.q("sum(fraud_labels_parked)")


def _replayed_cards() -> int:
    return len({row["card_id"] for row in generate(ROWS, seed=11, drift_at=[ROWS // 2], mean_gap_s=1.0 / RATE)})


def check_window_features_missing(run: Run) -> None:
    # the synthetic rows carry card ids and no terminal ids: every transaction lacks the terminal's windows only
    assert run.q('sum(fraud_window_features_missing_total{id="terminal"})') == run.transactions
    assert not run.q('sum(fraud_window_features_missing_total{id="card"})')


def check_window_keys(run: Run) -> None:
    # one card table entry per card replayed, no terminal (the rows have none)
    assert run.q('sum(fraud_window_keys{table="cards"})') == _replayed_cards()
    assert not run.q('sum(fraud_window_keys{table="terminals"})')


def check_table_view_read_to(run: Run) -> None:
    # the worker's copy of the terminal table has read its changelog to the end (no terminal: empty)
    _, ends = committed_and_end(run.names.app_id, run.names.changelog(settings.TERMINAL_WINDOWS_TABLE))
    assert run.q('sum(fraud_table_view_read_to{table="terminals"})') == sum(ends.values())


def check_window_keys_expired(run: Run) -> None:
    # the replay spans a few seconds of event time: no card's 30-day windows are past
    assert not run.q("sum(fraud_window_keys_expired_total)")


def check_terminal_labels(run: Run) -> None:
    # no transaction has a terminal id, so no learned label goes to a terminal's windows
    assert not run.q("sum(fraud_terminal_labels_total)")


def check_drift_alerts(run: Run) -> None:
    # a concept change was injected half-way: it is detected, and every alert on the topic is counted
    assert run.drift_alerts_on_topic > 0
    assert run.q("sum(fraud_drift_alerts_total)") == run.drift_alerts_on_topic


def check_central_learner_idle(query: str):
    """The check of a central learning metric (the learner's, or a scorer's staleness bound): this run
    uses the suite's LEARNING_MODE ("partition": app.testing.single_partition), where neither runs,
    so the metric stays absent or zero (central learning's metrics are checked against its
    integration tests' own counts: test_central_learner.py, test_central_scoring.py)."""
    def check(run: Run) -> None:
        assert not run.q(query), (query, run.q(query))
    return check


def check_alignment_off(query: str):
    """The check of an event-time alignment metric: this run has ALIGN_MAX_SKEW_S at the suite's 0
    (no alignment: app.testing.single_partition), so the metric stays zero (the alignment at work: test_central_scoring.py's
    test_a_worker_scores_its_partitions_in_step_in_event_time)."""
    def check(run: Run) -> None:
        assert not run.q(query), (query, run.q(query))
    return check


CHECKS = {
    "fraud_events_held": check_alignment_off("sum(fraud_events_held)"),
    "fraud_partitions_paused": check_alignment_off("sum(fraud_partitions_paused)"),
    "fraud_partition_skew_seconds": check_alignment_off("sum(fraud_partition_skew_seconds)"),
    "fraud_learner_examples_total": check_central_learner_idle("sum(fraud_learner_examples_total)"),
    "fraud_learner_examples_received": check_central_learner_idle("sum(fraud_learner_examples_received)"),
    "fraud_learner_lag": check_central_learner_idle("sum(fraud_learner_lag)"),
    "fraud_snapshots_total": check_central_learner_idle("sum(fraud_snapshots_total)"),
    "fraud_snapshot_seconds": check_central_learner_idle("sum(fraud_snapshot_seconds_count)"),
    "fraud_snapshot_bytes": check_central_learner_idle("sum(fraud_snapshot_bytes)"),
    "fraud_replica_lag": check_central_learner_idle("sum(fraud_replica_lag)"),
    "fraud_staleness_held_seconds_total": check_central_learner_idle("sum(fraud_staleness_held_seconds_total)"),
    "fraud_staleness_timeouts_total": check_central_learner_idle("sum(fraud_staleness_timeouts_total)"),
    "fraud_events_in_total": check_events_in,
    "fraud_events_out_total": check_events_out,
    "fraud_agent_events_total": check_agent_events,
    "fraud_dead_letters_total": check_dead_letters,
    "fraud_consumer_lag": check_consumer_lag,
    "fraud_committed_offset": check_committed_offset,
    "fraud_consume_to_produce_seconds": check_consume_to_produce,
    "fraud_event_to_score_seconds": check_event_to_score,
    "fraud_score": check_fraud_score,
    "fraud_decisions_total": check_decisions,
    "fraud_labels_total": check_labels,
    "fraud_labels_pending": check_labels_pending,
    "fraud_label_delay_seconds": check_label_delay,
    "fraud_model_events_learned": check_events_learned,
    "fraud_model_version_info": check_model_version,
    "fraud_prequential_metric": check_prequential,
    "fraud_checkpoints_total": check_checkpoints,
    "fraud_checkpoint_seconds": check_checkpoint_seconds,
    "fraud_checkpoint_bytes": check_checkpoint_bytes,
    "fraud_anomalies_total": check_anomalies,
    "fraud_anomaly_score": check_anomaly_score,
    "fraud_anomaly_events_seen": check_anomaly_events_seen,
    "fraud_anomaly_checkpoints_total": check_anomaly_checkpoints,
    "fraud_drift_alerts_total": check_drift_alerts,
    "fraud_drift_checkpoints_total": check_drift_checkpoints,
    "fraud_drift_challenger_events": check_drift_challenger_events,
    "fraud_caught_up_events_total": check_caught_up,
    "fraud_label_waits_total": check_label_waits,
    "fraud_read_back_short_total": check_read_back_short,
    "fraud_state_rejected_total": check_state_rejected,
    "fraud_parked_labels_total": check_parked_labels,
    "fraud_labels_parked": check_labels_parked,
    "fraud_window_features_missing_total": check_window_features_missing,
    "fraud_window_keys": check_window_keys,
    "fraud_window_keys_expired_total": check_window_keys_expired,
    "fraud_table_view_read_to": check_table_view_read_to,
    "fraud_terminal_labels_total": check_terminal_labels,
}


def test_every_metric_family_has_a_check():
    assert set(CHECKS) == set(FAMILIES), set(FAMILIES) ^ set(CHECKS)


@pytest.mark.parametrize("family", sorted(CHECKS))
def test_metric_matches_the_replay(run, family):
    require_live(family)
    CHECKS[family](run)


# --- every Grafana query returns data ------------------------------------------------------------
def dashboard_queries() -> list[tuple[str, str]]:
    """(id, PromQL) of every panel target and annotation of the provisioned dashboards."""
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                out.append((f"{path.stem}/{panel['title']}/{target['refId']}", target["expr"]))
        for ann in board.get("annotations", {}).get("list", []):
            if ann.get("expr"):
                out.append((f"{path.stem}/annotation/{ann['name']}", ann["expr"]))
    return out


QUERIES = dashboard_queries()


def test_dashboards_query_only_the_worker_metrics():
    assert QUERIES, "no dashboard found"
    for query_id, expr in QUERIES:
        names = set(re.findall(r"\bfraud_[a-z0-9_]+", expr))
        assert names, (query_id, expr)
        assert all(family_of(n) for n in names), (query_id, names - {n for n in names if family_of(n)})


@pytest.mark.parametrize("query_id,expr", QUERIES, ids=[q for q, _ in QUERIES])
def test_dashboard_query_returns_data(run, query_id, expr):
    require_live(*sorted({family_of(n) for n in re.findall(r"\bfraud_[a-z0-9_]+", expr)}))
    promql = expr.replace("$__rate_interval", RATE_INTERVAL)
    series = run.prometheus.query_range(promql, run.started, time.time())
    values = [float(v) for s in series for _, v in s["values"]]
    assert any(not math.isnan(v) for v in values), f"{query_id}: no data for {promql}"
