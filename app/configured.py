"""The service's objects as the settings configure them: where settings become objects.

The pure layer (:mod:`app.anomaly`, :mod:`app.drift`, :mod:`app.features`, :mod:`app.learning`,
:mod:`app.state`) takes its parameters through constructors and never reads :mod:`settings`. Each
function here takes a settings object ``s`` -- the :mod:`settings` module, or anything with the same
attributes -- and returns one configured object or factory, so the worker's composition step, the
command-line tools and the tests build exactly what the service runs, from whichever settings they
hold.

>>> import settings
>>> model_factory(settings, kind="lr")().__class__.__name__
'Pipeline'
>>> detector = anomaly_detector(settings)
>>> detector.warmup == settings.ANOMALY_WARMUP
True

Any object with the settings' attributes will do, e.g. the settings with a few changed:

>>> import types
>>> s = types.SimpleNamespace(**{**vars(settings), "ANOMALY_THRESHOLD_KIND": "fixed", "ANOMALY_THRESHOLD": 0.9})
>>> anomaly_threshold(s)
FixedThreshold(0.9)
"""
from __future__ import annotations

import functools
from typing import Any, AsyncIterator, Callable

from river import base

from app.anomaly import AnomalyDetector, FixedThreshold, RollingQuantileThreshold, make_threshold
from app.drift import detectors
from app.drift.mitigation import ChallengerSlot, NoMitigation, make_mitigation
from app.drift.monitor import DriftMonitor
from app.features import TransactionFeatures
from app.learning import PrequentialEvaluator, pipeline
from app.state.pending import PendingIndex

__all__ = [
    "adwin_params", "anomaly_detector", "anomaly_threshold", "checkpoint_table", "error_monitor", "feature_monitor",
    "learner_book", "mitigation", "model_factory", "model_params", "pending_index",
    "prequential_evaluator", "read_back_options", "score_monitor", "service_streams", "transaction_features",
    "values_reader",
]


# --- the model (scoring agent, backfill, benchmarks) ----------------------------------------------
def model_params(s: Any) -> dict:
    """The keyword arguments of :func:`~app.learning.pipeline.build_model`: ``MODEL_KIND``,
    ``ARF_*``, ``LR_*`` and ``SEED`` (``ARF_MAX_FEATURES`` is a number when it is made of digits)."""
    max_features = s.ARF_MAX_FEATURES
    return dict(
        kind=s.MODEL_KIND, trees=s.ARF_TREES, seed=s.SEED, arf_weight=s.ARF_WEIGHT,
        grace_period=s.ARF_GRACE_PERIOD,
        max_features=int(max_features) if str(max_features).isdigit() else max_features,
        lambda_value=s.ARF_LAMBDA, lr_learning_rate=s.LR_LEARNING_RATE, lr_positive_weight=s.LR_POSITIVE_WEIGHT,
    )


def model_factory(s: Any, **overrides) -> Callable[[], base.Classifier]:
    """The picklable factory of the configured model (what :class:`~app.learning.OnlineLearner`
    takes); ``overrides`` replace some of :func:`model_params`, e.g. ``kind="lr"``."""
    return pipeline.model_factory(**{**model_params(s), **overrides})


def prequential_evaluator(s: Any) -> PrequentialEvaluator:
    """The scorer's metrics: over the last ``PREQUENTIAL_WINDOW`` labelled events, decisions at
    ``DECISION_THRESHOLD``."""
    return PrequentialEvaluator(s.PREQUENTIAL_WINDOW, s.DECISION_THRESHOLD)


def learner_book(s: Any) -> "LearnerBook":
    """The central learner's bookkeeping (``LEARNING_MODE = "central"``): ``LEARN_SAMPLE_RATE`` of
    the genuine examples learned, a snapshot every ``SNAPSHOT_EVERY`` examples or ``SNAPSHOT_EVERY_S``
    seconds (0: no time bound), its record over ``PREQUENTIAL_WINDOW`` examples at ``DECISION_THRESHOLD``.

    >>> import settings
    >>> learner_book(settings).every == settings.SNAPSHOT_EVERY
    True
    """
    from app.learning.central import LearnerBook

    return LearnerBook(sample_rate=s.LEARN_SAMPLE_RATE, every=s.SNAPSHOT_EVERY, every_s=s.SNAPSHOT_EVERY_S or None,
                       window=s.PREQUENTIAL_WINDOW, threshold=s.DECISION_THRESHOLD)


def pending_index(s: Any) -> PendingIndex:
    """One partition's index of transactions waiting for their label: ``PENDING_MAX``,
    ``PENDING_TTL_S``, ``PENDING_EXPIRED_REMEMBERED``."""
    return PendingIndex(s.PENDING_MAX, s.PENDING_TTL_S, s.PENDING_EXPIRED_REMEMBERED)


# --- anomaly detection ----------------------------------------------------------------------------
def anomaly_threshold(s: Any) -> FixedThreshold | RollingQuantileThreshold:
    """``ANOMALY_THRESHOLD_KIND`` with ``ANOMALY_THRESHOLD`` (fixed) or ``ANOMALY_QUANTILE`` and
    ``ANOMALY_QUANTILE_WINDOW`` (quantile)."""
    return make_threshold(s.ANOMALY_THRESHOLD_KIND, value=s.ANOMALY_THRESHOLD, q=s.ANOMALY_QUANTILE,
                          window=s.ANOMALY_QUANTILE_WINDOW)


def anomaly_detector(s: Any) -> AnomalyDetector:
    """A fresh detector: ``ANOMALY_TREES``, ``ANOMALY_HEIGHT``, ``ANOMALY_WINDOW``, ``ANOMALY_WARMUP``,
    ``SEED`` and :func:`anomaly_threshold`."""
    return AnomalyDetector(trees=s.ANOMALY_TREES, height=s.ANOMALY_HEIGHT, window=s.ANOMALY_WINDOW,
                           warmup=s.ANOMALY_WARMUP, threshold=anomaly_threshold(s), seed=s.SEED)


# --- drift monitoring -----------------------------------------------------------------------------
def adwin_params(s: Any) -> dict:
    """ADWIN's ``delta`` and ``clock`` (``DRIFT_DELTA``, ``DRIFT_CLOCK``), as keyword arguments of
    :class:`~app.drift.monitor.DriftMonitor` and the monitors of :mod:`app.drift.detectors`."""
    return {"delta": s.DRIFT_DELTA, "clock": s.DRIFT_CLOCK}


def feature_monitor(s: Any) -> DriftMonitor:
    """A fresh input monitor: ``DRIFT_FEATURES`` through ``DRIFT_FEATURE_TRANSFORM``."""
    return detectors.feature_monitor(features=list(s.DRIFT_FEATURES), transform=s.DRIFT_FEATURE_TRANSFORM,
                                     **adwin_params(s))


def score_monitor(s: Any, warning_delta: float | None = None) -> DriftMonitor:
    """A fresh score and error monitor (``DRIFT_SCORE_DIRECTION``, ``DRIFT_ERROR_DIRECTION``, watched
    once their model has learned ``DRIFT_SETTLE_EVENTS``) with a
    warning detector of ``warning_delta``; by default the service's: ``DRIFT_WARNING_DELTA`` when
    ``DRIFT_MITIGATION`` is ``challenger`` (its challengers start on warnings), none otherwise."""
    if warning_delta is None and s.DRIFT_MITIGATION == "challenger":
        warning_delta = s.DRIFT_WARNING_DELTA
    return detectors.score_monitor(warning_delta=warning_delta, score_direction=s.DRIFT_SCORE_DIRECTION,
                                   error_direction=s.DRIFT_ERROR_DIRECTION, settle=s.DRIFT_SETTLE_EVENTS,
                                   **adwin_params(s))


def error_monitor(s: Any) -> DriftMonitor:
    """A fresh monitor of the central learner's error stream (:func:`app.drift.detectors.error_monitor`):
    ADWIN of ``DRIFT_DELTA`` and ``DRIFT_CLOCK``, ``DRIFT_ERROR_DIRECTION``, watched once the model has
    learned ``DRIFT_SETTLE_EVENTS``, as :func:`score_monitor` watches the scores' error stream.

    >>> import settings
    >>> error_monitor(settings).settle == {"error": settings.DRIFT_SETTLE_EVENTS}
    True
    """
    return detectors.error_monitor(direction=s.DRIFT_ERROR_DIRECTION, settle=s.DRIFT_SETTLE_EVENTS, **adwin_params(s))


def service_streams(s: Any) -> Callable[..., Any]:
    """:func:`app.drift.detectors.service_streams` with ``DRIFT_FEATURES`` and ``DRIFT_MONITOR_SCORES``:
    ``streams(x, probability, label, threshold)``."""
    return functools.partial(detectors.service_streams, features=list(s.DRIFT_FEATURES),
                             monitor_scores=s.DRIFT_MONITOR_SCORES)


def mitigation(s: Any, slots: Callable[[Any], ChallengerSlot] | None = None) -> NoMitigation:
    """The ``DRIFT_MITIGATION`` policy (``DRIFT_CHALLENGER_MIN_EVENTS``, ``DRIFT_CHALLENGER_MAX_AGE``);
    ``slots`` as in :func:`~app.drift.mitigation.make_mitigation`."""
    return make_mitigation(s.DRIFT_MITIGATION, min_events=s.DRIFT_CHALLENGER_MIN_EVENTS,
                           max_age=s.DRIFT_CHALLENGER_MAX_AGE, slots=slots)


# --- windows --------------------------------------------------------------------------------------
def transaction_features(s: Any) -> TransactionFeatures:
    """The model's window features (:class:`~app.features.TransactionFeatures`): ``CARD_WINDOW_DAYS``
    on ``CARD_PANE_S`` panes (with ``CARD_AMOUNT_RATIOS``, the amount over each one's mean amount
    too), ``TERMINAL_WINDOW_DAYS`` ending ``TERMINAL_DELAY_S`` before the transaction on
    ``TERMINAL_PANE_S`` panes, and the calendar flags. The caller decides whether to use them
    (``WINDOW_FEATURES``). The scorer (and so ``POST /score``), the anomaly agent and the Spark jobs
    all take theirs from here, so a model trained by one is served the same features by the others.

    >>> import settings, types
    >>> transaction_features(settings).names[0]
    'CUSTOMER_ID_NB_TX_1DAY_WINDOW'
    >>> s = types.SimpleNamespace(**{**vars(settings), "CARD_WINDOW_DAYS": [7], "CARD_AMOUNT_RATIOS": True})
    >>> transaction_features(s).cards.names
    ('CUSTOMER_ID_NB_TX_7DAY_WINDOW', 'CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW', 'CUSTOMER_ID_AMOUNT_OVER_AVG_7DAY_WINDOW')
    >>> transaction_features(types.SimpleNamespace(**{**vars(s), "CARD_AMOUNT_RATIOS": False})).cards.names
    ('CUSTOMER_ID_NB_TX_7DAY_WINDOW', 'CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW')
    """
    return TransactionFeatures(
        card_days=[int(k) for k in s.CARD_WINDOW_DAYS], terminal_days=[int(k) for k in s.TERMINAL_WINDOW_DAYS],
        terminal_delay_s=float(s.TERMINAL_DELAY_S), card_hop_s=int(s.CARD_PANE_S),
        terminal_hop_s=int(s.TERMINAL_PANE_S), amount_ratios=bool(s.CARD_AMOUNT_RATIOS))


# --- state ----------------------------------------------------------------------------------------
def checkpoint_table(s: Any, app: Any, name: str, help: str) -> Any:
    """A checkpoint table of the Faust ``app`` (see :func:`app.state.changelog.checkpoint_table`):
    ``TOPIC_PARTITIONS`` partitions, messages up to ``CHECKPOINT_MAX_BYTES``."""
    from app.state import changelog

    return changelog.checkpoint_table(app, name, s.CHECKPOINT_MAX_BYTES, help, partitions=s.TOPIC_PARTITIONS)


def read_back_options(s: Any) -> dict:
    """The ``broker`` (``KAFKA_BROKER``) and ``client_options`` (security: ``KAFKA_SECURITY_PROTOCOL``,
    ``KAFKA_SASL_*``, ``KAFKA_SSL_*``) keyword arguments of :func:`app.state.read_back.read_back`."""
    from app.security import kafka_client_options

    return {"broker": s.KAFKA_BROKER, "client_options": kafka_client_options(s)}


def values_reader(s: Any, topic: str, decode: Callable[[bytes], Any]) -> Callable[[int, int, int], AsyncIterator[Any]]:
    """:func:`app.state.read_back.values_reader` of ``topic`` on the configured broker."""
    from app.state import read_back

    return read_back.values_reader(topic, decode, **read_back_options(s))
