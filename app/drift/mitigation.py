"""What to do with a learner when its error stream drifts: nothing, reset it, or promote a challenger.

The policies are pure and keyed (one learner per key: the scoring agent keeps one per partition).
A learner is anything with ``predict_proba(x) -> float``, ``learn(x, y)`` and ``reset()``.

When each fits
--------------
``none``
    Alerts only. Right when the model adapts by itself (an ARF replaces its own drifting trees
    through per-tree detectors), when alarms feed a human or a retraining job, or when a false
    alarm would cost more than a late reaction (heavy models that take long to relearn).
``reset``
    Forget everything and learn from scratch at the alarm. Right for abrupt, large concept changes
    where the old model is worse than no model, with a model that learns fast and plenty of labels
    after the change. Wrong for a false alarm or a feature-only drift: the model then loses what it
    knew and scores near-blindly until it has relearned (PR-AUC collapses at 0.17 % fraud).
``challenger``
    A second learner starts learning at the last *warning* and replaces the live one at the drift
    alarm. It has then already seen the labelled events between warning and alarm, so the dip after
    the switch is shorter than after a reset. Right when the warning comes well before the alarm
    (gradual drifts, slow error streams such as a rare-fraud error rate) and the extra learner's
    cost is affordable. If no challenger exists, or it has learned fewer than ``min_events``
    labelled events, the drift falls back to a reset (and says so).

Warning (ADWIN has none)
------------------------
The warning is a second ADWIN on the same error stream with a larger delta (``DRIFT_WARNING_DELTA``),
i.e. a more sensitive, less certain detector: it fires earlier on a real change and more often on
noise. A challenger starts at a warning when none runs, or when the running one is older than
``max_age`` labelled events without having been promoted (the warning that started it was noise).

Each key's challenger runs in a :class:`ChallengerSlot`, which can be checkpointed; the policy
keeps its own slots unless it is given ``slots`` (a function from a key to its slot: a worker gives
slots restored from its checkpoints, so that a restart does not lose a running challenger).

>>> class Mean:  # a toy learner: predicts the mean label it has learned
...     def __init__(self): self.reset()
...     def reset(self): self.n, self.s = 0, 0.0
...     def learn(self, x, y): self.n += 1; self.s += y
...     def predict_proba(self, x): return self.s / self.n if self.n else 0.5
>>> live = Mean()
>>> for _ in range(100): live.learn({}, 0)
>>> policy = make_mitigation("challenger", min_events=10)
>>> policy.on_warning(0, live)
True
>>> for _ in range(20): policy.observe(0, {}, 1)
>>> outcome = policy.on_drift(0, live)
>>> outcome.action, outcome.learner is live, outcome.learner.predict_proba({})
('challenger', False, 1.0)
>>> make_mitigation("reset").on_drift(0, live).action, live.n
('reset', 0)
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from app.learning.learner import dump_checkpoint, load_checkpoint

MITIGATIONS = ("none", "reset", "challenger")


class Learner(Protocol):
    def predict_proba(self, x: dict) -> float: ...

    def learn(self, x: dict, y: int) -> Any: ...

    def reset(self) -> Any: ...


def fresh_copy(learner: Learner) -> Learner:
    """A new, untrained learner configured like ``learner``: its own ``fresh()`` if it has one (a
    learner whose model lives elsewhere), else a deep copy, reset."""
    fresh = getattr(learner, "fresh", None)
    if fresh is not None:
        return fresh()
    clone = copy.deepcopy(learner)
    clone.reset()
    return clone


@dataclass(frozen=True)
class Outcome:
    """What a policy did: the action name (as written into alerts) and the learner to use from now on."""

    action: str
    learner: Learner


class NoMitigation:
    """Alerts only; the learner is left alone."""

    name = "none"

    def observe(self, key: Any, x: dict, y: int) -> None:
        pass

    def on_warning(self, key: Any, learner: Learner) -> bool:
        return False

    def on_drift(self, key: Any, learner: Learner) -> Outcome:
        return Outcome("none", learner)

    def challenger_events(self, key: Any) -> int:
        return 0


class ResetMitigation(NoMitigation):
    """The learner forgets everything at the drift alarm."""

    name = "reset"

    def on_drift(self, key: Any, learner: Learner) -> Outcome:
        learner.reset()
        return Outcome("reset", learner)


class ChallengerSlot:
    """Where one key's challenger runs: no learner, or a learner and the labelled events it learned.

    ``changes`` counts what changed it (a start, a learned event, a promotion or a drop), never
    going back: a checkpoint is due after so many. A checkpoint holds the learner itself (pickled).

    >>> from app.learning import OnlineLearner
    >>> from app.learning.pipeline import model_factory
    >>> slot = ChallengerSlot()
    >>> slot.learn({"V1": 1.0}, 1)  # no challenger runs: nothing learned
    False
    >>> slot.start(OnlineLearner(model_factory(kind="lr")))
    >>> slot.learn({"V1": 1.0}, 1), slot.learn({"V1": -1.0}, 0), slot.events
    (True, True, 2)
    >>> restored = ChallengerSlot.from_checkpoint(slot.to_checkpoint())
    >>> restored.events, restored.changes, restored
    (2, 3, ChallengerSlot(2 events learned))
    >>> restored.learner.predict_proba({"V1": 1.0}) == slot.learner.predict_proba({"V1": 1.0})
    True
    >>> learner, events = restored.take()
    >>> events, restored.learner, restored.changes
    (2, None, 4)
    """

    def __init__(self, learner: Learner | None = None, events: int = 0, changes: int = 0) -> None:
        self.learner, self.events, self.changes = learner, events, changes

    def start(self, learner: Learner) -> None:
        """``learner`` (untrained) is the challenger from now on."""
        self.learner, self.events = learner, 0
        self.changes += 1

    def learn(self, x: dict, y: int) -> bool:
        """The challenger, if one runs, learns ``(x, y)``; whether one did."""
        if self.learner is None:
            return False
        self.learner.learn(x, y)
        self.events += 1
        self.changes += 1
        return True

    def take(self) -> tuple[Learner, int] | None:
        """The challenger and its event count, removed from the slot (None if none runs)."""
        if self.learner is None:
            return None
        taken = self.learner, self.events
        self.learner, self.events = None, 0
        self.changes += 1
        return taken

    def to_checkpoint(self) -> bytes:
        """The slot as bytes (see :meth:`from_checkpoint`). The slot goes on with the challenger read
        back from them, laid out as new objects (:func:`~app.learning.learner.dump_checkpoint`)."""
        blob, state = dump_checkpoint(_SLOT_MAGIC, {"format": _SLOT_FORMAT, "learner": self.learner,
                                                    "events": self.events, "changes": self.changes})
        self.learner = state["learner"]
        return blob

    @classmethod
    def from_checkpoint(cls, data: bytes) -> "ChallengerSlot":
        """The slot in ``data`` (:class:`~app.learning.learner.CheckpointError` if it is not one)."""
        state = load_checkpoint(data, _SLOT_MAGIC, "challenger checkpoint", _SLOT_FORMAT)
        return cls(state["learner"], state["events"], state["changes"])

    def __repr__(self) -> str:
        running = "none" if self.learner is None else f"{self.events} events learned"
        return f"ChallengerSlot({running})"


_SLOT_MAGIC = b"FRCH"
_SLOT_FORMAT = 1


class ChallengerMitigation(ResetMitigation):
    """A learner started at the last warning replaces the live one at the drift alarm."""

    name = "challenger"

    def __init__(self, min_events: int = 200, max_age: int = 20000,
                 spawn: Callable[[Learner], Learner] = fresh_copy,
                 slots: Callable[[Any], ChallengerSlot] | None = None) -> None:
        self.min_events = min_events
        self.max_age = max_age
        self.spawn = spawn
        if slots is None:
            own: dict[Any, ChallengerSlot] = {}
            slots = lambda key: own.setdefault(key, ChallengerSlot())  # noqa: E731
        self.slot = slots

    def challenger_events(self, key: Any) -> int:
        """Labelled events the challenger of ``key`` has learned (0: none runs)."""
        return self.slot(key).events

    def on_warning(self, key: Any, learner: Learner) -> bool:
        """Start a challenger unless a young one runs; True when one was started."""
        slot = self.slot(key)
        if slot.learner is not None and slot.events <= self.max_age:
            return False
        slot.start(self.spawn(learner))
        return True

    def observe(self, key: Any, x: dict, y: int) -> None:
        self.slot(key).learn(x, y)

    def on_drift(self, key: Any, learner: Learner) -> Outcome:
        taken = self.slot(key).take()
        if taken is not None and taken[1] >= self.min_events:
            return Outcome("challenger", taken[0])
        return super().on_drift(key, learner)


def make_mitigation(name: str, min_events: int = 200, max_age: int = 20000,
                    spawn: Callable[[Learner], Learner] = fresh_copy,
                    slots: Callable[[Any], ChallengerSlot] | None = None) -> NoMitigation:
    """The policy called ``name`` (``none``, ``reset`` or ``challenger``; ``slots``: see
    :class:`ChallengerMitigation`)."""
    if name == "none":
        return NoMitigation()
    if name == "reset":
        return ResetMitigation()
    if name == "challenger":
        return ChallengerMitigation(min_events=min_events, max_age=max_age, spawn=spawn, slots=slots)
    raise ValueError(f"unknown mitigation {name!r} (use one of {', '.join(MITIGATIONS)})")
