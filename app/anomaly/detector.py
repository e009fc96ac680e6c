"""The anomaly detector: ``MinMaxScaler | HalfSpaceTrees``, score then learn, one event at a time.

Half-Space Trees need features in ``[0, 1]``: the scaler learns each feature's running min and max.
Scores are in ``[0, 1]``, higher = more anomalous. The first ``window`` events give score 0 (the
trees have no reference mass yet), and nothing is flagged before ``warmup`` events.

>>> import random
>>> rng = random.Random(0)
>>> def usual():   # two tight clusters, around (0, 0) and (1, 1)
...     c = rng.choice([0.0, 1.0])
...     return {"a": c + rng.gauss(0, 0.05), "b": c + rng.gauss(0, 0.05)}
>>> detector = AnomalyDetector(trees=10, height=6, window=50, warmup=100,
...                            threshold=RollingQuantileThreshold(q=0.99, window=200), seed=1)
>>> verdicts = [detector.process(usual()) for _ in range(300)]
>>> sum(v.flagged for v in verdicts), detector.events_seen
(0, 300)
>>> detector.process({"a": 0.0, "b": 1.0}).flagged   # between the clusters: never seen there
True

A checkpoint (:meth:`AnomalyDetector.to_checkpoint`) holds the model, the threshold's state, the
warm-up and the count of events seen; the restored detector goes on exactly as the saved one
(only load checkpoints this service wrote: unpickling runs code):

>>> restored = AnomalyDetector.from_checkpoint(detector.to_checkpoint())
>>> restored.events_seen, restored.version == detector.version
(301, True)
>>> x = usual()
>>> restored.process(x) == detector.process(x)
True
"""
from __future__ import annotations

from typing import NamedTuple

from river import anomaly, compose, preprocessing

from app.anomaly.threshold import FixedThreshold, RollingQuantileThreshold, make_threshold
from app.learning.learner import dump_checkpoint, load_checkpoint

CHECKPOINT_FORMAT = 1
_MAGIC = b"FRDA"  # then the pickle


class Verdict(NamedTuple):
    """The detector's answer for one event: its score, the threshold in force, whether it flags."""

    score: float
    threshold: float
    flagged: bool


def make_model(trees: int = 10, height: int = 8, window: int = 250, seed: int = 42) -> compose.Pipeline:
    """``MinMaxScaler | HalfSpaceTrees`` with ``trees`` trees of height ``height`` and a reference
    window of ``window`` events; ``seed`` fixes the trees' random splits.

    >>> make_model(trees=3, height=4, window=20)["HalfSpaceTrees"].n_trees
    3
    """
    return preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(
        n_trees=trees, height=height, window_size=window, seed=seed)


class AnomalyDetector:
    """A model, a threshold and a warm-up: :meth:`process` scores an event, then learns it.

    Parameters
    ----------
    trees, height, window, seed
        The Half-Space Trees (see :func:`make_model`). Height 8 builds in well under a second;
        the trees' memory grows as ``2 ** height``.
    warmup
        Events learned before anything is flagged.
    threshold
        When a score flags; by default a fresh :func:`~app.anomaly.threshold.make_threshold`
        (the 0.995-quantile of the last 10,000 scores).

    >>> AnomalyDetector()
    AnomalyDetector(MinMaxScaler|HST(trees=10,height=8,window=250)/RollingQuantileThreshold(q=0.995, window=10000)@0)
    """

    def __init__(self, trees: int = 10, height: int = 8, window: int = 250, warmup: int = 1000,
                 threshold: FixedThreshold | RollingQuantileThreshold | None = None, seed: int = 42) -> None:
        self.model = make_model(trees, height, window, seed)
        self.threshold = make_threshold() if threshold is None else threshold
        self.warmup = int(warmup)
        self.events_seen = 0

    @property
    def version(self) -> str:
        """What made the scores: model, threshold and events learned so far."""
        hst = self.model.steps["HalfSpaceTrees"]
        return (f"MinMaxScaler|HST(trees={hst.n_trees},height={hst.height},window={hst.window_size})"
                f"/{self.threshold!r}@{self.events_seen}")

    def process(self, x: dict[str, float]) -> Verdict:
        """Score ``x`` against what came before, compare with the threshold, then learn ``x``."""
        verdict = self.judge(x)
        self.model.learn_one(x)
        self.threshold.update(verdict.score)
        self.events_seen += 1
        return verdict

    def judge(self, x: dict[str, float]) -> Verdict:
        """Score ``x`` and compare with the threshold, without learning anything (for an event
        already learned, seen again).

        >>> detector = AnomalyDetector(trees=3, height=4, window=10, warmup=0, threshold=FixedThreshold(0.5))
        >>> detector.judge({"a": 1.0}) == detector.judge({"a": 1.0}), detector.events_seen
        (True, 0)
        """
        score = float(self.model.score_one(x))
        threshold = self.threshold.value()
        return Verdict(score, threshold, self.events_seen >= self.warmup and score > threshold)

    # -- checkpoints --------------------------------------------------------------------------------
    def to_checkpoint(self) -> bytes:
        """The detector as bytes (see :meth:`from_checkpoint`). The detector goes on with the model
        and threshold read back from them, laid out as new objects (:func:`~app.learning.learner.dump_checkpoint`)."""
        blob, state = dump_checkpoint(_MAGIC, {"format": CHECKPOINT_FORMAT, "model": self.model,
                                               "threshold": self.threshold, "warmup": self.warmup,
                                               "events_seen": self.events_seen})
        self.model, self.threshold = state["model"], state["threshold"]
        return blob

    @classmethod
    def from_checkpoint(cls, data: bytes) -> "AnomalyDetector":
        """The detector saved by :meth:`to_checkpoint`.

        >>> AnomalyDetector.from_checkpoint(b"FRDLjunk")
        Traceback (most recent call last):
        ...
        app.learning.learner.CheckpointError: not a valid anomaly detector checkpoint (bad header)
        """
        state = load_checkpoint(data, _MAGIC, "anomaly detector checkpoint", CHECKPOINT_FORMAT)
        detector = cls.__new__(cls)  # not __init__: it would build a fresh model only to replace it
        detector.model, detector.threshold = state["model"], state["threshold"]
        detector.warmup, detector.events_seen = state["warmup"], state["events_seen"]
        return detector

    def __repr__(self) -> str:
        return f"AnomalyDetector({self.version})"
