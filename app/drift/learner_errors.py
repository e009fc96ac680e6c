"""The central learner's error stream: ADWIN over its own prequential errors.

In central learning (``LEARNING_MODE = "central"``, ``docs/scaleout.md``) the one learner predicts
each example before it learns it, every example in one order; whether that prediction's decision
at the threshold was wrong (:meth:`app.learning.central.LearnerBook.record`) is the deployment's
error stream. The scores' drift monitors leave their ``error`` stream out in this mode (see
:class:`~app.drift.watch.DriftWatch`): a score is a replica's, up to a snapshot behind the learner.

:class:`LearnerErrorWatch` feeds those 0/1 values to one :class:`~app.drift.monitor.DriftMonitor`
built as the service builds the scores' error stream (:func:`app.drift.detectors.error_monitor`:
the same ADWIN ``delta`` and ``clock``, direction and settling, where ``learned`` is the examples
the learner's model had learned) and turns a detection into the :class:`~app.records.DriftAlert`
the drift agents publish: stream ``error``, partition :data:`CENTRAL` (the record's partition is a
number, and this stream is no partition's), the example's transaction id and event time, its
offset in the examples topic, the learner's version when it predicted it, mitigation ``none`` (no
policy acts on the central model) and a sentence that names the central learner. With negative
subsampling the learner predicts only the examples it learns (every fraud, a share of the genuine
ones), so the stream's error rate is that sample's, decisions taken on the corrected probability.

Nothing here sends anything: the learner hands the alerts to the sender it was given (the drift
agents' :func:`app.agents.drift.publisher`) and awaits the broker's confirmation before it writes
the snapshot that holds the window past them (:mod:`app.learning.central_learner`).

State: :meth:`to_checkpoint` / :meth:`restore` (the monitor's, :meth:`DriftMonitor.to_checkpoint`).
The learner writes it into each model snapshot, so a learner taking over restores the window as of
the snapshot's example and feeds it the examples it reads back (without alerting: those were sent
before their batch was acknowledged); the detections then fall where an uninterrupted learner's do.

>>> from app.drift.detectors import error_monitor
>>> watch = LearnerErrorWatch(lambda: error_monitor(settle=0))
>>> found = []
>>> for i in range(4000):
...     wrong = (i % 50 == 0) if i < 2000 else (i % 5 == 0)  # 2% wrong, then 20%
...     one = watch.observe(wrong, learned=i, event_time=float(i), transaction_id=f"tx-{i}", offset=i,
...                         model_version=f"lr-g0@{i}")
...     found += [one] if one else []
>>> [(a.stream, a.partition, a.mitigation, 2000 < a.position < 2200) for a in found]
[('error', -1, 'none', True)]
>>> found[0].description.endswith("examples of the central learner")
True
>>> restored = LearnerErrorWatch(lambda: error_monitor(settle=0))
>>> restored.restore(watch.to_checkpoint()).report()["values"]
4000
"""
from __future__ import annotations

from typing import Callable

from app.drift.describe import describe
from app.drift.monitor import DriftMonitor
from app.drift.watch import alert
from app.records import DriftAlert

CENTRAL = -1  # the partition of the central learner's alerts: its stream is the examples', no partition's
STREAM = "error"


class LearnerErrorWatch:
    """ADWIN over the central learner's prequential errors (see the module's docstring);
    ``new_monitor()`` gives a fresh monitor of the ``error`` stream."""

    def __init__(self, new_monitor: Callable[[], DriftMonitor]) -> None:
        self.new_monitor = new_monitor
        self.monitor = new_monitor()
        self.latest: DriftAlert | None = None  # the last alert this watch gave

    def observe(self, wrong: bool, learned: int, *, event_time: float, transaction_id: str | None, offset: int,
                model_version: str, alerting: bool = True) -> DriftAlert | None:
        """Feed one prediction's error (``wrong``; ``learned``: the examples its model had learned);
        the alert of the drift it makes the monitor find, if any, unless not ``alerting`` (an example
        read back, whose alert was sent by the learner that learned it first)."""
        found = self.monitor.update(STREAM, float(wrong), learned)
        if found is None or found.kind != "drift" or not alerting:
            return None
        self.latest = alert(found, "none", event_time=event_time, transaction_id=transaction_id,
                            partition=CENTRAL, offset=offset, model_version=model_version,
                            description=describe(found, unit="examples", where="of the central learner"))
        return self.latest

    def to_checkpoint(self) -> bytes:
        """The monitor's state as bytes (see :meth:`restore`)."""
        return self.monitor.to_checkpoint()

    def restore(self, data: bytes) -> "LearnerErrorWatch":
        """Take the monitor's state from ``data`` (:meth:`to_checkpoint`'s; one of a monitor with
        other ADWIN parameters is refused: :class:`~app.learning.learner.CheckpointError`); returns
        this watch."""
        self.monitor = self.new_monitor().restore(data)
        return self

    def report(self) -> dict:
        """What ``/drift`` shows of it: the stream, the detector, the values it was fed, ADWIN's
        window, the values that waited for the model to settle, and its last alert (None before one)."""
        return {"stream": STREAM, "detector": self.monitor.detector, "values": self.monitor.count(STREAM),
                "width": self.monitor.width(STREAM), "waiting": self.monitor.waiting,
                "last_alert": None if self.latest is None else self.latest.asdict()}

    def __repr__(self) -> str:
        return f"LearnerErrorWatch({self.monitor!r})"
