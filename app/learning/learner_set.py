"""Keyed online learners driven by lists of operations: what a model host runs.

A :class:`LearnerSet` holds one :class:`~app.learning.OnlineLearner` per key (the scoring agent's key
is the partition) and applies operations, in order, each a tuple whose first item names it:

``("open", key, checkpoint, factory, warm_start_path)``
    The learner of ``key`` from ``checkpoint`` bytes if given, else from the ``warm_start_path`` file
    if given, else a new one from ``factory``; returns its :class:`LearnerInfo`.
``("step", key, x, y)``
    The fraud probability of ``x``; then, unless ``y`` is None, learn ``(x, y)`` (predict, then learn).
``("step_explain", key, x, y)``
    ``(probability, members, top)``: as ``step``, with the explanation of that prediction made from
    the model before it learns ``(x, y)`` (:func:`app.learning.explain.explain`): each blend member's
    probability by name (None unless the model is a blend) and the features that moved its logistic
    regression most (None without one). The probability is the one ``step`` gives.
``("learn", key, x, y)``
    Learn one labelled event (a late label).
``("predict", key, x)``
    ``(probability, members, version, events_learned)``: the fraud probability of ``x``; when the
    model is a :class:`~app.learning.blend.ProbabilityBlend`, each member's own (in the blend's
    order), else ``None``; the version and events learned of the model that answered. Nothing is
    learned (a synchronous score: :mod:`app.http_score`; a model process may apply it ahead of
    stream operations sent before it, :mod:`app.learning.model_host`).
``("reset", key)``
    A fresh model, as a new generation (drift mitigation).
``("put", key, checkpoint)``
    Replace the learner with the one in ``checkpoint`` (a promoted challenger).
``("checkpoint", key, meta)``
    The learner's checkpoint bytes, with ``meta`` (the stream positions it has learned up to).
``("drop", key)``
    Forget the learner (its partition went to another worker).
``("ping", None)``
    Nothing: returns True (an owner's check that the host answers).

An operation that fails gives an :class:`OpFailed` in its place and the next ones still run, so one
bad event does not stop the others. Nothing here knows about processes or streams: the same set runs
in the worker's process or in a model process (:mod:`app.learning.model_host`).

>>> from app.learning.pipeline import model_factory
>>> learners = LearnerSet()
>>> info, = learners.apply([("open", 0, None, model_factory(kind="lr"), "")])
>>> info.version, info.events_learned, info.restored
('lr-g0', 0, False)
>>> learners.apply([("step", 0, {"V1": 1.0}, 1), ("step", 0, {"V1": 1.0}, None)])[0]
0.5
>>> probability, members, top = learners.apply([("step_explain", 0, {"V1": 1.0}, None)])[0]
>>> members, [feature["name"] for feature in top]
(None, ['V1'])
>>> probability, members, version, events_learned = learners.apply([("predict", 0, {"V1": 1.0})])[0]
>>> probability > 0.5, members, version, events_learned, learners.learners[0].events_learned
(True, None, 'lr-g0', 1, 1)
>>> blob, = learners.apply([("checkpoint", 0, {"offsets": {"transactions": 1}})])
>>> learners.apply([("drop", 0), ("open", 0, blob, None, "")])[1].events_learned
1
>>> learners.apply([("ping", None)])
[True]
>>> failed, = learners.apply([("step", 9, {}, None)])
>>> failed
OpFailed('step on key 9: KeyError: 9')
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from app.learning import explain
from app.learning.learner import OnlineLearner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LearnerInfo:
    """What the owner of a key needs to know about its learner after an ``open``."""

    name: str
    generation: int
    events_learned: int
    meta: dict
    factory: Callable
    restored: bool

    @property
    def version(self) -> str:
        return f"{self.name}-g{self.generation}"


class OpFailed:
    """An operation that raised: its message, in the place of its result."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"OpFailed({self.message!r})"


class LearnerSet:
    """One :class:`OnlineLearner` per key; :meth:`apply` runs a list of operations in order.

    ``on_new_model`` is called after a model is built, restored or replaced, and after a checkpoint
    (the model host freezes the garbage collector's view of it then: see :mod:`app.gc_tuning`).
    """

    def __init__(self, on_new_model: Callable[[], Any] | None = None) -> None:
        self.learners: dict[Any, OnlineLearner] = {}
        self._on_new_model = on_new_model or (lambda: None)

    def apply(self, ops: list[tuple]) -> list:
        """The result of each operation, in order (``None`` for those that return nothing)."""
        out = []
        learners = self.learners
        for op in ops:
            try:
                if op[0] == "step":  # the hot path first
                    _, key, x, y = op
                    learner = learners[key]
                    probability = learner.predict_proba(x)
                    if y is not None:
                        learner.learn(x, y)
                    out.append(probability)
                else:
                    out.append(getattr(self, "_" + op[0])(*op[1:]))
            except Exception as exc:
                log.debug("operation %s failed", op[0], exc_info=True)
                out.append(OpFailed(f"{op[0]} on key {op[1]!r}: {type(exc).__name__}: {exc}"))
        return out

    def _open(self, key, checkpoint: bytes | None, factory: Callable | None, warm_start_path: str) -> LearnerInfo:
        if checkpoint is not None:
            learner, restored = OnlineLearner.from_checkpoint(checkpoint), True
        elif warm_start_path:
            learner, restored = OnlineLearner.load(warm_start_path), False
            learner.meta = {}  # its stream positions are not this stream's
        else:
            learner, restored = OnlineLearner(factory), False
        self.learners[key] = learner
        self._on_new_model()
        return LearnerInfo(learner.name, learner.generation, learner.events_learned, dict(learner.meta),
                           learner.factory, restored)

    def _predict(self, key, x: dict) -> tuple[float, list[float] | None, str, int]:
        learner = self.learners[key]
        probability = learner.predict_proba(x)
        members = explain.members(learner.model)
        return (probability, list(members.values()) if members is not None else None, learner.version,
                learner.events_learned)

    def _step_explain(self, key, x: dict, y: int | None) -> tuple[float, dict | None, list | None]:
        learner = self.learners[key]
        probability = learner.predict_proba(x)
        members, top = explain.explain(learner.model, x)
        if y is not None:
            learner.learn(x, y)
        return probability, members, top

    def _learn(self, key, x: dict, y: int) -> None:
        self.learners[key].learn(x, y)

    def _reset(self, key) -> None:
        self.learners[key].reset()
        self._on_new_model()

    def _put(self, key, checkpoint: bytes) -> None:
        self.learners[key] = OnlineLearner.from_checkpoint(checkpoint)
        self._on_new_model()

    def _checkpoint(self, key, meta: dict) -> bytes:
        learner = self.learners[key]
        learner.meta = meta
        blob = learner.to_checkpoint()
        self._on_new_model()
        return blob

    def _drop(self, key) -> None:
        self.learners.pop(key, None)

    def _ping(self, _key) -> bool:
        return True
