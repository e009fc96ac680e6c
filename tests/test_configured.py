"""app.configured: each setting reaches the object it configures, and the pure constructors'
literal defaults are the settings' defaults (so an object built without arguments is the one the
service builds when nothing is configured)."""
from __future__ import annotations

import inspect
import os
import runpy
import types
from pathlib import Path
from unittest import mock

import pytest

import settings
from app import configured
from app.anomaly import AnomalyDetector, make_threshold
from app.drift import detectors, make_mitigation
from app.drift.monitor import DriftMonitor
from app.features import TransactionFeatures
from app.learning import PrequentialEvaluator, build_model, pipeline
from app.state import changelog, read_back
from app.testing.single_partition import settings_defaults

SETTINGS_FILE = Path(settings.__file__)


@pytest.fixture
def defaults():
    """settings.py's values with no ``FRAUD_*`` variable set."""
    return types.SimpleNamespace(**settings_defaults())


def changed(**values):
    """The current settings with some of them changed."""
    return types.SimpleNamespace(**{**{k: getattr(settings, k) for k in dir(settings) if k.isupper()}, **values})


def default_of(function, name):
    return inspect.signature(function).parameters[name].default


# --- literal defaults = the settings' defaults ----------------------------------------------------
def test_model_defaults_are_the_settings_defaults(defaults):
    for name, value in configured.model_params(defaults).items():
        assert default_of(build_model, name) == value, name
    assert pipeline.model_factory()().__class__ is configured.model_factory(defaults)().__class__


def test_anomaly_defaults_are_the_settings_defaults(defaults):
    fresh, configured_detector = AnomalyDetector(), configured.anomaly_detector(defaults)
    assert fresh.version == configured_detector.version and fresh.warmup == configured_detector.warmup
    assert fresh.model["HalfSpaceTrees"].seed == configured_detector.model["HalfSpaceTrees"].seed == defaults.SEED
    assert repr(make_threshold()) == repr(configured.anomaly_threshold(defaults))
    assert default_of(make_threshold, "value") == defaults.ANOMALY_THRESHOLD


def test_drift_defaults_are_the_settings_defaults(defaults):
    assert DriftMonitor().detector == DriftMonitor(**configured.adwin_params(defaults)).detector
    fresh, built = detectors.feature_monitor(), configured.feature_monitor(defaults)
    assert (fresh.detector, sorted(fresh.transforms)) == (built.detector, sorted(built.transforms))
    fresh, built = detectors.score_monitor(), configured.score_monitor(defaults)
    assert (fresh.detector, fresh.directions, fresh.warning_delta) == (built.detector, built.directions,
                                                                       built.warning_delta)
    x = {"Amount": 5.0, "V1": 1.0, "V2": 2.0, "V3": 3.0, "V4": 4.0}
    assert list(detectors.service_streams(x, 0.3, 1, 0.5)) == list(configured.service_streams(defaults)(x, 0.3, 1, 0.5))
    policy = configured.mitigation(changed(**{**vars(defaults), "DRIFT_MITIGATION": "challenger"}))
    assert (policy.min_events, policy.max_age) == (default_of(make_mitigation, "min_events"),
                                                   default_of(make_mitigation, "max_age"))


def test_state_and_metrics_defaults_are_the_settings_defaults(defaults):
    options = configured.read_back_options(defaults)
    assert default_of(read_back.read_back, "broker") == default_of(read_back.values_reader, "broker") == \
        options["broker"]
    # no client options: aiokafka's own defaults, which are what the default settings ask for
    assert options["client_options"] == {"security_protocol": "PLAINTEXT"}
    assert default_of(PrequentialEvaluator, "window") == defaults.PREQUENTIAL_WINDOW
    assert default_of(changelog.checkpoint_table, "partitions") == defaults.TOPIC_PARTITIONS
    assert default_of(PrequentialEvaluator, "threshold") == defaults.DECISION_THRESHOLD


# --- each setting reaches its object --------------------------------------------------------------
def test_model_factory_follows_the_settings():
    model = configured.model_factory(changed(MODEL_KIND="arf", ARF_TREES=2, ARF_MAX_FEATURES="3"))()
    assert type(model).__name__ == "ARFClassifier" and model.n_models == 2 and model.max_features == 3
    factory = configured.model_factory(changed(MODEL_KIND="arf", ARF_TREES=2), kind="lr")
    assert pipeline.model_name(factory) == "lr"


def test_anomaly_objects_follow_the_settings():
    s = changed(ANOMALY_TREES=3, ANOMALY_HEIGHT=4, ANOMALY_WINDOW=20, ANOMALY_WARMUP=7, SEED=5,
                ANOMALY_THRESHOLD_KIND="fixed", ANOMALY_THRESHOLD=0.75)
    detector = configured.anomaly_detector(s)
    hst = detector.model["HalfSpaceTrees"]
    assert (hst.n_trees, hst.height, hst.window_size, hst.seed, detector.warmup) == (3, 4, 20, 5, 7)
    assert detector.threshold.value() == 0.75
    threshold = configured.anomaly_threshold(changed(ANOMALY_THRESHOLD_KIND="quantile", ANOMALY_QUANTILE=0.9,
                                                     ANOMALY_QUANTILE_WINDOW=50))
    assert (threshold.kind, threshold.q, threshold.window) == ("quantile", 0.9, 50)


def test_drift_objects_follow_the_settings():
    s = changed(DRIFT_DELTA=0.01, DRIFT_CLOCK=8, DRIFT_FEATURES=["Amount"], DRIFT_FEATURE_TRANSFORM="log1p",
                DRIFT_SCORE_DIRECTION="both", DRIFT_ERROR_DIRECTION="decrease", DRIFT_MONITOR_SCORES=False,
                DRIFT_MITIGATION="none", DRIFT_WARNING_DELTA=0.2)
    features = configured.feature_monitor(s)
    assert features.detector == "ADWIN(delta=0.01,clock=8) on log1p" and list(features.transforms) == ["feature:Amount"]
    scores = configured.score_monitor(s)
    assert scores.directions == {"score": "both", "error": "decrease"} and scores.warning_delta is None
    assert configured.score_monitor(s, warning_delta=0.3).warning_delta == 0.3
    challenger = changed(**{**vars(s), "DRIFT_MITIGATION": "challenger"})
    assert configured.score_monitor(challenger).warning_delta == 0.2
    assert list(configured.service_streams(s)({"Amount": 2.0, "V1": 1.0}, 0.9, 1, 0.5)) == [("feature:Amount", 2.0)]
    policy = configured.mitigation(changed(**{**vars(challenger), "DRIFT_CHALLENGER_MIN_EVENTS": 5,
                                              "DRIFT_CHALLENGER_MAX_AGE": 9}))
    assert (type(policy).__name__, policy.min_events, policy.max_age) == ("ChallengerMitigation", 5, 9)
    assert type(configured.mitigation(s)).__name__ == "NoMitigation"


def test_state_objects_follow_the_settings():
    s = changed(TOPIC_PARTITIONS=3, CHECKPOINT_MAX_BYTES=2_000_000, KAFKA_BROKER="kafka://broker:9093",
                KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT", KAFKA_SASL_USERNAME="u", KAFKA_SASL_PASSWORD="p",
                PENDING_MAX=10, PENDING_TTL_S=60.0, PENDING_EXPIRED_REMEMBERED=5, PREQUENTIAL_WINDOW=100,
                DECISION_THRESHOLD=0.3)
    app = mock.MagicMock()
    app.conf.producer_max_request_size = 0
    configured.checkpoint_table(s, app, "cp", help="checkpoints")
    call = app.Table.call_args
    assert call.args[0] == "cp" and call.kwargs["partitions"] == 3
    assert call.kwargs["extra_topic_configs"] == {"max.message.bytes": "2000000"}
    assert app.conf.producer_max_request_size == 2_000_000
    options = configured.read_back_options(s)
    assert options["broker"] == "kafka://broker:9093"
    assert options["client_options"]["security_protocol"] == "SASL_PLAINTEXT"
    assert options["client_options"]["sasl_plain_username"] == "u"
    evaluator = configured.prequential_evaluator(s)
    assert (evaluator.window, evaluator.threshold) == (100, 0.3)
    index = configured.pending_index(s)
    assert (index.max_size, index.ttl_s) == (10, 60.0)


def test_transaction_features_defaults_are_the_settings_defaults_with_the_amount_ratios(defaults):
    # the one difference: the pure class defaults to the Handbook's features, the settings add the ratios
    assert defaults.CARD_AMOUNT_RATIOS is True
    assert configured.transaction_features(defaults).params() == TransactionFeatures(amount_ratios=True).params()


def test_transaction_features_follow_the_settings():
    built = configured.transaction_features(changed(
        CARD_WINDOW_DAYS=["2", "14"], TERMINAL_WINDOW_DAYS=["3"], TERMINAL_DELAY_S=86_400, CARD_PANE_S=1_800,
        TERMINAL_PANE_S=3_600, CARD_AMOUNT_RATIOS=False))
    assert built.params() == {"card_days": [2, 14], "terminal_days": [3], "terminal_delay_s": 86_400.0,
                              "card_hop_s": 1_800, "terminal_hop_s": 3_600, "calendar": True, "night_until_hour": 6}
    assert built.cards.amount_ratios is False


@pytest.mark.parametrize("value, ratios", [("false", False), ("0", False), ("true", True)])
def test_the_card_amount_ratios_follow_the_environment(monkeypatch, value, ratios):
    for name in [n for n in os.environ if n.startswith(settings.PREFIX)]:
        monkeypatch.delenv(name)
    monkeypatch.setenv(settings.PREFIX + "CARD_AMOUNT_RATIOS", value)
    s = types.SimpleNamespace(**{k: v for k, v in runpy.run_path(str(SETTINGS_FILE)).items() if k.isupper()})
    built = configured.transaction_features(s)
    assert built.cards.amount_ratios is ratios
    assert [n for n in built.names if "OVER_AVG" in n] == (
        [f"CUSTOMER_ID_AMOUNT_OVER_AVG_{k}DAY_WINDOW" for k in (1, 7, 30)] if ratios else [])
    assert built.params() == {**TransactionFeatures().params(), **({"amount_ratios": True} if ratios else {})}
