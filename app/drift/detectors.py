"""The detectors the service runs, built from the settings (one place for the agent and the harness).

Per partition the drift agent keeps two monitors:

* :func:`feature_monitor` — one ADWIN per name in ``DRIFT_FEATURES`` (stream ``feature:<name>``),
  each value through ``DRIFT_FEATURE_TRANSFORM`` first, alarms on any change of the mean. The default
  (``Amount, V1, V2, V3`` after ``log1p_abs``) watches the typical amount and the spread of the three
  largest PCA components of the ULB data: a column mix-up or a rescaled upstream pipeline moves their
  log-magnitude even though their mean stays 0.
* :func:`score_monitor` — ``score`` (the fraud probability, alarms in ``DRIFT_SCORE_DIRECTION``,
  default increases: a learning model's scores fall from its prior towards the fraud base rate while
  it learns, which is no problem; a rise is more transactions looking fraudulent) and ``error``
  (1 when the decision at the threshold was wrong, alarms in ``DRIFT_ERROR_DIRECTION``, default
  increases). With the challenger mitigation a warning detector runs on them too.

:func:`service_streams` lists, for a labelled event, the values the agent feeds, in the order it
feeds them; the evaluation harness uses it to score a stream the way the service watches it.

>>> names = [name for name, _ in service_streams({"Amount": 12.0, "V1": -0.5}, 0.02, 0, 0.5,
...                                               features=["Amount", "V1", "V7"])]
>>> names
['feature:Amount', 'feature:V1', 'score', 'error']
>>> feature_monitor(features=["Amount"], transform="log1p_abs").detector
'ADWIN(delta=0.002,clock=32) on log1p_abs'
"""
from __future__ import annotations

from typing import Iterator, Sequence

import settings
from app.drift.monitor import DriftMonitor
from app.drift.transforms import make_transform


def feature_monitor(features: Sequence[str] | None = None, transform: str | None = None,
                    delta: float | None = None, clock: int | None = None) -> DriftMonitor:
    """ADWIN per input feature (``feature:<name>``); defaults from the settings."""
    features = settings.DRIFT_FEATURES if features is None else features
    transform = settings.DRIFT_FEATURE_TRANSFORM if transform is None else transform
    function = make_transform(transform)
    return DriftMonitor(delta, clock, transforms={f"feature:{name}": function for name in features}, label=transform)


def score_monitor(delta: float | None = None, clock: int | None = None, warning_delta: float | None = None,
                  score_direction: str | None = None, error_direction: str | None = None) -> DriftMonitor:
    """ADWIN on the ``score`` and ``error`` streams; defaults from the settings (no warning detector)."""
    return DriftMonitor(delta, clock, directions={
        "score": settings.DRIFT_SCORE_DIRECTION if score_direction is None else score_direction,
        "error": settings.DRIFT_ERROR_DIRECTION if error_direction is None else error_direction,
    }, warning_delta=warning_delta)


def service_streams(x: dict, probability: float, label: int | None, threshold: float,
                    features: Sequence[str] | None = None,
                    monitor_scores: bool | None = None) -> Iterator[tuple[str, float]]:
    """The (stream, value) pairs the agent feeds for one event: configured features present in ``x``,
    then, when scores are monitored, the score and (for a labelled event) the 0/1 error."""
    features = settings.DRIFT_FEATURES if features is None else features
    for name in features:
        value = x.get(name)
        if value is not None:
            yield f"feature:{name}", float(value)
    if settings.DRIFT_MONITOR_SCORES if monitor_scores is None else monitor_scores:
        yield "score", float(probability)
        if label is not None:
            yield "error", float((probability >= threshold) != bool(label))
