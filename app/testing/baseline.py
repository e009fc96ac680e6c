"""The benchmarks' reference for the service's model: the same model (:class:`~app.learning.OnlineLearner`
over :func:`~app.learning.build_model`) predicting then learning each row in a plain loop in this
process, without Kafka or Faust.

>>> from app.data.synthetic import generate
>>> loop = plain_loop(generate(200, seed=1), {"kind": "lr"})
>>> loop["p"].shape, loop["y"].shape, loop["eps"] > 0
((200,), (200,), True)
"""
from __future__ import annotations

import functools
import time

import numpy as np


def plain_loop(rows: list[dict], params: dict) -> dict:
    """Predict then learn each row (``params`` for :func:`~app.learning.build_model`): events/s of
    wall time (``eps``) and of this process's CPU time (``cpu_eps``), each row's probability before
    learning it (``p``) and label (``y``), the blend members' probabilities when the model is a blend
    (``members``, else None), and the trained ``model``."""
    from app.learning import OnlineLearner, build_model
    from app.records import FEATURE_NAMES

    learner = OnlineLearner(functools.partial(build_model, **params))
    blend_members = getattr(learner.model, "models", None)
    xs = [{name: float(row[name]) for name in FEATURE_NAMES} for row in rows]
    ys = [int(row["Class"]) for row in rows]
    probabilities = np.empty(len(rows))
    members = np.empty((len(rows), len(blend_members))) if blend_members else None
    started, cpu_started = time.perf_counter(), time.process_time()
    for i, (x, y) in enumerate(zip(xs, ys)):
        probabilities[i] = learner.predict_proba(x)
        if members is not None:
            members[i] = learner.model.last_member_probabilities
        learner.learn(x, y)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {"eps": len(rows) / elapsed, "cpu_eps": len(rows) / cpu, "p": probabilities, "y": np.asarray(ys),
            "members": members, "model": learner.model}


def all_agents_loop(rows: list[dict], params: dict, s) -> dict:
    """The work of the product's three agents on each row, in a plain loop in this process: the model
    predicts then learns (``params`` for :func:`~app.learning.build_model`), the anomaly detector of
    settings ``s`` scores then learns, the drift monitors take the row's monitored features and the
    score (and its error, the label being in the row). The same figures as :func:`plain_loop`, with
    ``flagged``, the number of anomalies.

    >>> import settings
    >>> from app.data.synthetic import generate
    >>> loop = all_agents_loop(generate(300, seed=1), {"kind": "lr"}, settings)
    >>> loop["p"].shape, 0 <= loop["flagged"] <= 300
    ((300,), True)
    """
    from app import configured
    from app.drift.watch import score_values
    from app.learning import OnlineLearner, build_model
    from app.records import FEATURE_NAMES

    learner = OnlineLearner(functools.partial(build_model, **params))
    detector = configured.anomaly_detector(s)
    features, scores = configured.feature_monitor(s), configured.score_monitor(s)
    monitored = [(f"feature:{name}", name) for name in s.DRIFT_FEATURES]
    threshold = s.DECISION_THRESHOLD
    xs = [{name: float(row[name]) for name in FEATURE_NAMES} for row in rows]
    ys = [int(row["Class"]) for row in rows]
    probabilities = np.empty(len(rows))
    flagged = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for i, (x, y) in enumerate(zip(xs, ys)):
        p = probabilities[i] = learner.predict_proba(x)
        learner.learn(x, y)
        flagged += detector.process(x).flagged
        for stream, name in monitored:
            features.update(stream, x[name])
        score = _Score(p, p >= threshold, y)
        for stream, value in score_values(score, s.LEARNING_MODE != "central"):
            scores.update(stream, value, i)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {"eps": len(rows) / elapsed, "cpu_eps": len(rows) / cpu, "p": probabilities, "y": np.asarray(ys),
            "members": None, "model": learner.model, "flagged": flagged}


class _Score:
    """What :func:`~app.drift.watch.score_values` reads of a score."""

    __slots__ = ("fraud_probability", "decision", "label")

    def __init__(self, fraud_probability: float, decision: bool, label: int) -> None:
        self.fraud_probability, self.decision, self.label = fraud_probability, decision, label
