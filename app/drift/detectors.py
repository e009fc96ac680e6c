"""The monitors the drift agent runs, and the values it feeds them (one place for the agent and
the evaluation harness).

Per partition the drift agent keeps two monitors:

* :func:`feature_monitor` — one ADWIN per input feature (stream ``feature:<name>``), each value
  through a transform first, alarms on any change of the mean. The default (``Amount, V1, V2, V3``
  after ``log1p_abs``) watches the typical amount and the spread of the three largest PCA
  components of the ULB data: a column mix-up or a rescaled upstream pipeline moves their
  log-magnitude even though their mean stays 0.
* :func:`score_monitor` — ``score`` (the fraud probability; by default alarms on increases: a
  learning model's scores fall from its prior towards the fraud base rate while it learns, which is
  no problem; a rise is more transactions looking fraudulent) and ``error`` (1 when the decision at
  the threshold was wrong; by default alarms on increases). With the challenger mitigation a
  warning detector runs on them too. Both wait until their model has learned ``settle`` labelled
  events (:data:`SETTLE_EVENTS` by default): a learning model moves its own scores and errors, and
  ADWIN would page on those moves (see "Settling" in :mod:`app.drift.monitor`).

In central learning the ``error`` stream is the central learner's own (:func:`error_monitor`,
:mod:`app.drift.learner_errors`), not the scores'.

:func:`service_streams` lists, for a labelled event, the values the agent feeds, in the order it
feeds them; the evaluation harness uses it to score a stream the way the service watches it.
:mod:`app.configured` builds these from the ``DRIFT_*`` settings.

>>> names = [name for name, _ in service_streams({"Amount": 12.0, "V1": -0.5}, 0.02, 0, 0.5,
...                                               features=["Amount", "V1", "V7"])]
>>> names
['feature:Amount', 'feature:V1', 'score', 'error']
>>> feature_monitor(features=["Amount"], transform="log1p_abs").detector
'ADWIN(delta=0.002,clock=32) on log1p_abs'
"""
from __future__ import annotations

from typing import Iterator, Sequence

from app.drift.monitor import DriftMonitor
from app.drift.transforms import make_transform

FEATURES = ("Amount", "V1", "V2", "V3")  # the default monitored input features
SETTLE_EVENTS = 10_000  # labelled events a model learns before its score and error streams are watched


def feature_monitor(features: Sequence[str] = FEATURES, transform: str = "log1p_abs",
                    delta: float = 0.002, clock: int = 32) -> DriftMonitor:
    """One ADWIN per name in ``features`` (stream ``feature:<name>``), each value through the
    ``transform`` of that name first (see :func:`~app.drift.transforms.make_transform`); ``delta``
    and ``clock`` as in :class:`DriftMonitor`. ``None`` for any parameter takes its default.

    >>> sorted(feature_monitor().transforms)
    ['feature:Amount', 'feature:V1', 'feature:V2', 'feature:V3']
    """
    features = FEATURES if features is None else features
    transform = "log1p_abs" if transform is None else transform
    function = make_transform(transform)
    return DriftMonitor(delta, clock, transforms={f"feature:{name}": function for name in features}, label=transform)


def score_monitor(delta: float = 0.002, clock: int = 32, warning_delta: float | None = None,
                  score_direction: str = "increase", error_direction: str = "increase",
                  settle: int = SETTLE_EVENTS) -> DriftMonitor:
    """ADWIN on the ``score`` and ``error`` streams, alarming on changes in ``score_direction`` and
    ``error_direction`` (``"increase"``, ``"decrease"`` or ``"both"``), once their model has learned
    ``settle`` labelled events; a warning detector when ``warning_delta`` is given. ``None`` for a
    direction or ``settle`` takes its default.

    >>> monitor = score_monitor()
    >>> monitor.directions, monitor.settle
    ({'score': 'increase', 'error': 'increase'}, {'score': 10000, 'error': 10000})
    """
    settle = SETTLE_EVENTS if settle is None else settle
    return DriftMonitor(delta, clock, directions={
        "score": "increase" if score_direction is None else score_direction,
        "error": "increase" if error_direction is None else error_direction,
    }, warning_delta=warning_delta, settle={"score": settle, "error": settle})


def error_monitor(delta: float = 0.002, clock: int = 32, direction: str = "increase",
                  settle: int = SETTLE_EVENTS) -> DriftMonitor:
    """ADWIN on the ``error`` stream alone, watched as :func:`score_monitor` watches it (alarming on
    changes in ``direction``, once its model has learned ``settle`` labelled events), without a
    warning detector: the central learner's own errors (:mod:`app.drift.learner_errors`), which no
    mitigation acts on. ``None`` for ``direction`` or ``settle`` takes its default.

    >>> monitor = error_monitor(settle=500)
    >>> monitor.directions, monitor.settle, monitor.warning_delta
    ({'error': 'increase'}, {'error': 500}, None)
    """
    settle = SETTLE_EVENTS if settle is None else settle
    return DriftMonitor(delta, clock, directions={"error": "increase" if direction is None else direction},
                        settle={"error": settle})


def service_streams(x: dict, probability: float, label: int | None, threshold: float,
                    features: Sequence[str] = FEATURES,
                    monitor_scores: bool = True) -> Iterator[tuple[str, float]]:
    """The (stream, value) pairs the agent feeds for one event: the ``features`` present in ``x``,
    then, with ``monitor_scores``, the score and (for a labelled event) the 0/1 error at
    ``threshold``. ``None`` for ``features`` or ``monitor_scores`` takes its default.

    >>> list(service_streams({"Amount": 3.0}, 0.9, None, 0.5, monitor_scores=False))
    [('feature:Amount', 3.0)]
    """
    features = FEATURES if features is None else features
    for name in features:
        value = x.get(name)
        if value is not None:
            yield f"feature:{name}", float(value)
    if monitor_scores is None or monitor_scores:
        yield "score", float(probability)
        if label is not None:
            yield "error", float((probability >= threshold) != bool(label))
