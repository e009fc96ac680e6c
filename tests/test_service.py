"""The composition step (:mod:`app.service`): which tables the scorer of each learning mode declares."""
from __future__ import annotations

import types
import uuid

import faust

import settings
from app import service
from app.topics import Topics


def settings_with(**overrides) -> types.SimpleNamespace:
    """The settings' defaults with ``overrides``."""
    values = {name: getattr(settings, name) for name in dir(settings) if name.isupper()}
    return types.SimpleNamespace(**{**values, **overrides})


def scorer_tables(mode: str) -> tuple[set[str], object]:
    """The tables an app holds once the scorer of ``LEARNING_MODE = mode`` is built on it, and the scorer."""
    app = faust.App(f"service-{uuid.uuid4().hex[:8]}", broker="kafka://127.0.0.1:1", store="memory://")
    s = settings_with(LEARNING_MODE=mode, STATE_KEY="k" * 32, MODEL_PROCESS=False)
    scorer = service.scorer(app, s, Topics(app, s))
    return set(app.tables.keys()), scorer


def test_partition_mode_declares_the_model_checkpoint_table():
    tables, scorer = scorer_tables("partition")
    assert settings.CHECKPOINT_TABLE in tables
    assert scorer.replica is None


def test_central_mode_declares_no_model_checkpoint_table():
    """Its scorer keeps no model checkpoints (the learner's snapshots are the model's): the table's
    changelog topic would stay empty. The scorer's other tables are there as in the partition mode."""
    tables, scorer = scorer_tables("central")
    assert settings.CHECKPOINT_TABLE not in tables
    assert {settings.PENDING_TABLE, settings.PARKED_TABLE} <= tables
    assert scorer.replica is not None



LEARNER_AGENT = "app.agents.learner.learn_examples"  # the agent that reads the examples


def built(**overrides) -> tuple[object, object]:
    """The app and the service of ``build`` with ``overrides`` of the settings (without the Faust
    sensor's Prometheus collectors, which one process registers once)."""
    app = faust.App(f"service-{uuid.uuid4().hex[:8]}", broker="kafka://127.0.0.1:1", store="memory://")
    s = settings_with(STATE_KEY="k" * 32, MODEL_PROCESS=False, ALIGN_MAX_SKEW_S=0.0, **overrides)
    return app, service.build(app, s)


def test_a_central_worker_runs_the_learner_unless_told_it_only_scores(monkeypatch):
    """``CENTRAL_LEARNER`` false: the worker scores and does not subscribe to the examples (the
    learner runs in workers of its own); a worker with no agents is such a learner."""
    monkeypatch.setattr(service.observability, "register", lambda app: None)
    app, both = built(LEARNING_MODE="central", AGENTS=["scoring"])
    assert both.learner is not None and both.scorer is not None
    assert LEARNER_AGENT in app.agents
    app, scoring = built(LEARNING_MODE="central", AGENTS=["scoring"], CENTRAL_LEARNER=False)
    assert scoring.learner is None and scoring.scorer is not None
    assert LEARNER_AGENT not in app.agents
    app, learning = built(LEARNING_MODE="central", AGENTS=[])
    assert learning.learner is not None and learning.scorer is None
    assert built(LEARNING_MODE="partition", AGENTS=["scoring"])[1].learner is None


def test_in_central_mode_the_error_stream_is_the_learners(monkeypatch):
    """The learner watches its own errors (``DRIFT_MONITOR_SCORES``), with the settings' ADWIN; the
    scores' monitors leave their error stream out. In the partition mode the scores' is the one."""
    monkeypatch.setattr(service.observability, "register", lambda app: None)
    _, central = built(LEARNING_MODE="central", AGENTS=["scoring", "drift"], DRIFT_DELTA=0.01, DRIFT_SETTLE_EVENTS=7)
    watch = central.learner.error_watch()
    assert watch.monitor.detector == "ADWIN(delta=0.01,clock=32)" and watch.monitor.settle == {"error": 7}
    assert central.learner.send_alerts is not None
    assert central.drift.errors is False
    _, quiet = built(LEARNING_MODE="central", AGENTS=[], DRIFT_MONITOR_SCORES=False)
    assert quiet.learner.error_watch is None
    _, partition = built(LEARNING_MODE="partition", AGENTS=["scoring", "drift"])
    assert partition.drift.errors is True


TRANSACTION_AGENTS = ("app.agents.scoring.score_transactions", "app.agents.anomaly.detect_anomalies",
                      "app.agents.drift.monitor_transactions")


def transaction_agents(app) -> list[str]:
    """The agents of ``app`` that read the transactions topic."""
    return sorted(name for name, agent in app.agents.items()
                  if settings.TRANSACTIONS_TOPIC in agent.channel.get_topic_name())


def test_with_scoring_one_agent_reads_the_transactions_for_the_three(monkeypatch):
    """The anomaly and drift work is done on the scoring agent's batches (one channel, one decode and
    one acknowledgement per transaction), and the drift monitoring of the scores on the scores it
    wrote (no agent reads them back); without the scoring agent each has an agent of its own."""
    monkeypatch.setattr(service.observability, "register", lambda app: None)
    app, _ = built(LEARNING_MODE="partition", AGENTS=["scoring", "anomaly", "drift"])
    assert transaction_agents(app) == ["app.agents.scoring.score_transactions"]
    assert "app.agents.drift.monitor_scores" not in app.agents
    app, _ = built(LEARNING_MODE="partition", AGENTS=["anomaly", "drift"])
    assert transaction_agents(app) == sorted(TRANSACTION_AGENTS[1:])
    assert "app.agents.drift.monitor_scores" in app.agents
