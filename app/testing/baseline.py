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
