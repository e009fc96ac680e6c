"""The owner's view of a learner that lives in a model host (:mod:`app.learning.model_host`).

The model itself stays in the host; the owner keeps what it needs without asking: the version and
events-learned count a score carries, the events learned since the last checkpoint, and ``meta``
(the stream positions the model has learned up to). They are kept in step with the operations the
owner sends, in the order the host applies them: :meth:`step` counts a learned event when it makes
the operation, :meth:`reset` starts a new generation at once. A drift mitigation can use it like a
learner (``reset``; ``fresh`` gives an untrained in-process learner of the same model for a
challenger, which :meth:`replace_with` makes the live one).

>>> import asyncio
>>> from app.learning.model_host import LocalHost
>>> from app.learning.pipeline import model_factory
>>> async def demo():
...     learner = await HostedLearner.open(LocalHost(), 0, None, model_factory(kind="lr"), "")
...     probability, = await learner.host.submit([learner.step({"V1": 1.0}, 1)])
...     learner.reset()
...     challenger = learner.fresh()
...     challenger.learn({"V1": 2.0}, 0)
...     learner.replace_with(challenger)
...     blob = await learner.checkpoint()
...     return probability, learner.version, learner.events_learned, len(blob) > 0
>>> asyncio.run(demo())
(0.5, 'lr-g2', 1, True)
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from app.learning.learner import OnlineLearner
from app.learning.learner_set import LearnerInfo, OpFailed

log = logging.getLogger(__name__)


class HostedLearner:
    """A learner in ``host`` under ``key``, seen from its owner."""

    def __init__(self, host, key: Any, info: LearnerInfo) -> None:
        self.host = host
        self.key = key
        self.name = info.name
        self.generation = info.generation
        self.events_learned = info.events_learned
        self.learned_since_checkpoint = 0
        self.meta: dict = dict(info.meta)
        self.factory: Callable = info.factory
        self.restored = info.restored

    @classmethod
    async def open(cls, host, key: Any, checkpoint: bytes | None, factory: Callable, warm_start_path: str) -> "HostedLearner":
        """Restore ``key``'s learner in ``host`` from ``checkpoint``, or load ``warm_start_path``, or
        build one from ``factory``."""
        info, = await host.submit([("open", key, checkpoint, factory, warm_start_path)])
        if isinstance(info, OpFailed):
            raise RuntimeError(f"the learner of {key!r} could not be opened: {info.message}")
        return cls(host, key, info)

    @property
    def version(self) -> str:
        return f"{self.name}-g{self.generation}"

    def step(self, x: dict, y: int | None, explain: bool = False) -> tuple:
        """The operation that predicts ``x`` and then, unless ``y`` is None, learns it; with
        ``explain``, its result also explains the prediction (``step_explain``)."""
        if y is not None:
            self.events_learned += 1
            self.learned_since_checkpoint += 1
        return ("step_explain" if explain else "step", self.key, x, y)

    def learn(self, x: dict, y: int) -> tuple:
        """The operation that learns ``(x, y)``."""
        self.events_learned += 1
        self.learned_since_checkpoint += 1
        return ("learn", self.key, x, y)

    def unlearned(self) -> None:
        """A learning operation failed in the host: it did not count."""
        self.events_learned -= 1
        self.learned_since_checkpoint -= 1

    def reset(self) -> None:
        """Start a new generation with a fresh model (sent now; applied after what was sent before)."""
        self.generation += 1
        self.events_learned = 0
        self._send([("reset", self.key)])

    def fresh(self) -> OnlineLearner:
        """An untrained in-process learner of the same model, one generation on (a challenger)."""
        return OnlineLearner(self.factory, generation=self.generation + 1, name=self.name)

    def replace_with(self, learner: OnlineLearner) -> None:
        """Make ``learner`` the live model; the stream positions stay this learner's."""
        self.name, self.generation, self.events_learned = learner.name, learner.generation, learner.events_learned
        self._send([("put", self.key, learner.to_checkpoint())])

    async def checkpoint(self) -> bytes:
        """The checkpoint of the model as of every operation sent so far, with this ``meta``."""
        self.learned_since_checkpoint = 0
        blob, = await self.host.submit([("checkpoint", self.key, dict(self.meta))])
        if isinstance(blob, OpFailed):
            raise RuntimeError(f"checkpoint of {self.key!r} failed: {blob.message}")
        return blob

    def drop(self) -> None:
        """Forget the model in the host."""
        self._send([("drop", self.key)])

    def _send(self, ops: list[tuple]) -> None:
        def check(future) -> None:
            if future.cancelled():
                return
            error = future.exception()
            for result in [error] if error else future.result():
                if isinstance(result, (OpFailed, BaseException)):
                    log.error("learner %r: %s failed: %s", self.key, ops[0][0], result)

        self.host.submit(ops).add_done_callback(check)

    def __repr__(self) -> str:
        return f"HostedLearner({self.key!r}, {self.version}, events_learned={self.events_learned})"
