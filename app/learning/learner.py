"""One online model: predict, learn, reset, checkpoint and restore.

The learner owns a River classifier built by a picklable factory (see
:func:`app.learning.pipeline.model_factory`), counts the labelled events it has learned and
names its model version ``<model>-g<generation>``; :meth:`reset` starts a new generation from the
same factory (what a drift mitigation does).

A checkpoint is a header and a pickle of the model, the factory, the counters and free-form
``meta`` (the stream positions the model has learned up to), stamped with
:data:`CHECKPOINT_FORMAT`. It is not compressed: a forest's pickle shrinks by only ~20% with zlib
and compressing costs more time than pickling. Only load checkpoints this service wrote:
unpickling runs code. Checkpoints are pickled with :func:`app.learning.layout.dumps`, so the
objects read back are laid out as new ones, and a learner goes on from the model read back from
its own checkpoint: pickling left the model's objects in a layout whose attribute reads are slower.

>>> from app.learning.pipeline import model_factory
>>> learner = OnlineLearner(model_factory(kind="lr"))
>>> learner.predict_proba({"V1": 1.0})
0.5
>>> learner.learn({"V1": 1.0}, 1)
>>> learner.events_learned, learner.version
(1, 'lr-g0')
>>> restored = OnlineLearner.from_checkpoint(learner.to_checkpoint())
>>> restored.events_learned, restored.predict_proba({"V1": 1.0}) == learner.predict_proba({"V1": 1.0})
(1, True)
>>> restored.reset()
>>> restored.events_learned, restored.version
(0, 'lr-g1')
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Callable

from river import base

from app.learning import layout
from app.learning.pipeline import model_name

CHECKPOINT_FORMAT = 1
_MAGIC = b"FRDL"  # then the pickle


class CheckpointError(ValueError):
    """The bytes are not a checkpoint this code can read."""


def dump_checkpoint(magic: bytes, state: dict) -> tuple[bytes, dict]:
    """``magic`` then the pickle of ``state`` (which names its ``"format"``), and the state read back
    from it. The pickle unpickles into objects laid out as new ones (:func:`app.learning.layout.dumps`);
    the objects pickled are left in a slower layout, so their owner goes on with those read back.

    >>> blob, state = dump_checkpoint(b"TEST", {"format": 1, "x": [2]})
    >>> blob.startswith(b"TEST"), state
    (True, {'format': 1, 'x': [2]})
    """
    blob = magic + layout.dumps(state)
    return blob, pickle.loads(memoryview(blob)[len(magic):])


def load_checkpoint(data: bytes, magic: bytes, what: str, format_: int) -> dict:
    """The state in ``data`` written by :func:`dump_checkpoint` with ``magic`` and ``format_``;
    :class:`CheckpointError`, naming ``what`` it is not, otherwise.

    >>> load_checkpoint(dump_checkpoint(b"TEST", {"format": 1, "x": 2})[0], b"TEST", "test state", 1)["x"]
    2
    >>> load_checkpoint(dump_checkpoint(b"TEST", {"format": 2})[0], b"TEST", "test state", 1)
    Traceback (most recent call last):
    ...
    app.learning.learner.CheckpointError: test state format 2, this code reads 1
    """
    if not data.startswith(magic):
        raise CheckpointError(f"not a valid {what} (bad header)")
    try:
        state = pickle.loads(data[len(magic):])
    except Exception as exc:
        raise CheckpointError(f"unreadable {what}: {type(exc).__name__}: {exc}") from exc
    found = state.get("format") if isinstance(state, dict) else type(state).__name__
    if found != format_:
        raise CheckpointError(f"{what} format {found!r}, this code reads {format_}")
    return state


class OnlineLearner:
    """A River classifier with its counters; ``predict_proba`` then ``learn``, one event at a time."""

    def __init__(
        self,
        factory: Callable[[], base.Classifier],
        *,
        model: base.Classifier | None = None,
        events_learned: int = 0,
        generation: int = 0,
        name: str | None = None,
        meta: dict | None = None,
    ) -> None:
        self.factory = factory
        self.model = factory() if model is None else model
        self.events_learned = events_learned
        self.generation = generation
        self.name = name or model_name(factory)
        self.meta: dict[str, Any] = dict(meta or {})

    @property
    def version(self) -> str:
        """The model version written on each score: model name and generation."""
        return f"{self.name}-g{self.generation}"

    def predict_proba(self, x: dict) -> float:
        """P(fraud) for the features ``x`` (0.0 while the model has seen no fraud)."""
        return self.model.predict_proba_one(x).get(1, 0.0)

    def learn(self, x: dict, y: int) -> None:
        """Learn one labelled event."""
        self.model.learn_one(x, y)
        self.events_learned += 1

    def reset(self) -> None:
        """Replace the model with a fresh one from the same factory, as a new generation."""
        self.model = self.factory()
        self.events_learned = 0
        self.generation += 1

    # -- checkpoints --------------------------------------------------------------------------------
    def to_checkpoint(self) -> bytes:
        """The learner as bytes (see :meth:`from_checkpoint`). The learner goes on with the model
        read back from them, the same model in the layout of new objects (see the module)."""
        state = {
            "format": CHECKPOINT_FORMAT,
            "name": self.name,
            "generation": self.generation,
            "events_learned": self.events_learned,
            "meta": self.meta,
            "factory": self.factory,
            "model": self.model,
        }
        blob, read_back = dump_checkpoint(_MAGIC, state)
        self.model = read_back["model"]
        return blob

    @classmethod
    def from_checkpoint(cls, data: bytes) -> "OnlineLearner":
        """The learner saved by :meth:`to_checkpoint`.

        >>> OnlineLearner.from_checkpoint(b"junk")
        Traceback (most recent call last):
        ...
        app.learning.learner.CheckpointError: not a valid model checkpoint (bad header)
        """
        state = load_checkpoint(data, _MAGIC, "model checkpoint", CHECKPOINT_FORMAT)
        return cls(
            state["factory"], model=state["model"], events_learned=state["events_learned"],
            generation=state["generation"], name=state["name"], meta=state["meta"],
        )

    def save(self, path: str | Path) -> None:
        """Write the checkpoint to a file (atomically)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(self.to_checkpoint())
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "OnlineLearner":
        """The learner in a checkpoint file (for example a warm start from the batch backfill)."""
        return cls.from_checkpoint(Path(path).read_bytes())

    def __repr__(self) -> str:
        return f"OnlineLearner({self.version}, events_learned={self.events_learned})"
