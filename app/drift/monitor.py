"""ADWIN change detection over named value streams.

A :class:`DriftMonitor` keeps one ``river.drift.ADWIN`` per monitored stream (created on the
stream's first value) and turns its alarms into :class:`Detection` records.

What a detection says
---------------------
* ``position``: how many values the stream had given when ADWIN fired (the firing value included),
  so ``position - change_point`` is the detection delay in events.
* ``mean_before`` / ``mean_after``: ADWIN's own estimate of the change. When it fires, ADWIN drops
  the older sub-window W0 and keeps the recent one W1. ``mean_after`` is the mean of W1 (ADWIN's
  ``estimation`` right after the cut); ``mean_before`` is the mean of the dropped W0, computed
  exactly from ADWIN's totals just before and after the update. Both are in the monitored scale
  (after the stream's transform, e.g. ``log1p(Amount)``). ADWIN cuts on bucket boundaries, so
  at an early detection W1 still holds some pre-change values and ``mean_after`` lies between the
  old and the new level (in the example below: 0.75 for a jump from 0 to 3, 16 values after it).
* ``width``: the width of W1, the window ADWIN keeps after the cut.

Direction
---------
ADWIN fires on any change of the mean. For an error stream a *decrease* is the model getting
better, not a problem: with ``direction="increase"`` such cuts are counted in
:attr:`DriftMonitor.suppressed` but not reported. ``"decrease"`` is the mirror, ``"both"`` reports all.

Settling
--------
A model that is still learning moves its own scores and errors: a fresh model's scores fall from
its prior, and each fraud it learns in its first thousands of events lifts them for a while. ADWIN
reads such a bump as a change (a fresh worker on a stationary stream alerted on its score stream at
events 622 and 3,822). With ``settle`` (stream -> events) a stream's values wait until the model that
made them has learned that many labelled events (``learned`` in :meth:`DriftMonitor.update`; without
it, the stream's own count of values): they are counted (:attr:`DriftMonitor.waiting`, the
positions) but not given to the detector, so its window starts with a settled model's values. The
alternative, comparing against what a settled model would score, needs a second, frozen model per
partition; waiting costs only the detection of changes during the first ``settle`` events, which
the input features still watch. After it, detection is as fast as without it.

>>> young = DriftMonitor(settle={"score": 1000})
>>> [young.update("score", 0.9 if i < 500 else 0.01, learned=i) for i in range(2000)].count(None)
2000
>>> young.waiting, young.count("score"), young.width("score")
(1000, 2000, 1000)

Warnings
--------
ADWIN has no warning zone. With ``warning_delta`` set (larger than ``delta``, so more sensitive),
a second ADWIN runs on the same values and its cuts, in the monitored direction, are reported as
``kind="warning"`` detections: an earlier, less certain signal (a challenger model starts there,
see :mod:`app.drift.mitigation`). A value that trips both reports the drift.

>>> import random
>>> rng = random.Random(7)
>>> monitor = DriftMonitor(delta=0.002, clock=32)
>>> values = [rng.gauss(0, 1) for _ in range(2000)] + [rng.gauss(3, 1) for _ in range(2000)]
>>> found = [d for d in (monitor.update("x", v) for v in values) if d]
>>> [(d.stream, d.kind, d.position > 2000, d.position - 2000 < 100) for d in found]
[('x', 'drift', True, True)]
>>> d = found[0]
>>> round(d.mean_before, 1), d.mean_after > 0.5, d.width < d.position
(0.0, True, True)

Checkpoints
-----------
:meth:`DriftMonitor.to_checkpoint` keeps the detectors' windows and counts (not the transforms and
directions: code, given again by whoever builds the monitor); :meth:`DriftMonitor.restore` puts them
into a monitor built with the same ``delta``, ``clock``, ``warning_delta`` and ``label`` (the
transform's name, for the feature monitors), which then goes on exactly as the saved one (only
restore checkpoints this service wrote: unpickling runs code):

>>> saved = DriftMonitor(delta=0.002, clock=32)
>>> for v in values[:2010]:
...     _ = saved.update("x", v)
>>> restored = DriftMonitor(delta=0.002, clock=32).restore(saved.to_checkpoint())
>>> restored.count("x"), restored.updates
(2010, 2010)
>>> [restored.update("x", v) == saved.update("x", v) for v in values[2010:2100]] == [True] * 90
True
>>> DriftMonitor(delta=0.01, clock=32).restore(saved.to_checkpoint())
Traceback (most recent call last):
...
app.learning.learner.CheckpointError: drift monitor checkpoint of ADWIN(delta=0.002,clock=32), warning_delta=None; this monitor: ADWIN(delta=0.01,clock=32), warning_delta=None
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from river.drift import ADWIN

from app.drift.transforms import Transform, identity
from app.learning.learner import CheckpointError, dump_checkpoint, load_checkpoint

DIRECTIONS = ("both", "increase", "decrease")
CHECKPOINT_FORMAT = 1
_MAGIC = b"FRDM"  # then the pickle


@dataclass(frozen=True)
class Detection:
    """One alarm of one stream's detector."""

    stream: str
    kind: str  # "drift" or "warning"
    position: int
    mean_before: float
    mean_after: float
    width: int
    detector: str


class _Channel:
    """The detector(s) and bookkeeping of one stream."""

    def __init__(self, delta: float, clock: int, warning_delta: float | None) -> None:
        self.drift = ADWIN(delta=delta, clock=clock)
        self.warning = ADWIN(delta=warning_delta, clock=clock) if warning_delta else None
        self.count = 0


def _cut(adwin: ADWIN, value: float) -> tuple[float, float, int] | None:
    """Update ``adwin``; on a cut, (mean of the dropped W0, mean of the kept W1, width of W1)."""
    total, width = adwin.total, int(adwin.width)
    if adwin.drift_detected:  # River resets the window on the update after a detection
        total, width = 0.0, 0
    adwin.update(value)
    if not adwin.drift_detected:
        return None
    kept_total, kept = adwin.total, adwin.width
    dropped = width + 1 - kept
    before = (total + value - kept_total) / dropped if dropped > 0 else float("nan")
    return before, (kept_total / kept if kept else float("nan")), int(kept)


class DriftMonitor:
    """One ADWIN per named stream; :meth:`update` returns a :class:`Detection` when one fires.

    Parameters
    ----------
    delta
        ADWIN's significance, in ``(0, 1)``: smaller gives fewer false alarms and later alarms
        (``None``: the default, 0.002).
    clock
        ADWIN checks for a cut every ``clock`` values (``None``: the default, 32).
    transforms
        Maps a stream name to a function applied to each of its values first (default: none).
    directions
        Maps a stream name to ``"both"``, ``"increase"`` or ``"decrease"`` (default both).
    warning_delta
        The significance of a second, more sensitive ADWIN whose cuts are warnings (default: none).
    label
        Appended to :attr:`detector` (``on <label>``): the transform's name, for feature monitors.
    settle
        Maps a stream name to the labelled events its model must have learned before the stream's
        values reach its detector (see "Settling" above; default: none waits).
    """

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 32,
        transforms: Mapping[str, Transform] | None = None,
        directions: Mapping[str, str] | None = None,
        warning_delta: float | None = None,
        label: str = "",
        settle: Mapping[str, int] | None = None,
    ) -> None:
        self.delta = float(0.002 if delta is None else delta)
        self.clock = int(32 if clock is None else clock)
        if not 0 < self.delta < 1 or self.clock < 1:
            raise ValueError("need 0 < delta < 1 and clock >= 1")
        if warning_delta is not None and not self.delta < warning_delta < 1:
            raise ValueError("warning_delta must lie between delta and 1 (a more sensitive detector)")
        self.warning_delta = warning_delta
        self.transforms = dict(transforms or {})
        self.directions = dict(directions or {})
        for stream, direction in self.directions.items():
            if direction not in DIRECTIONS:
                raise ValueError(f"direction of {stream!r} must be one of {DIRECTIONS}, got {direction!r}")
        self.label = label
        self.settle = {stream: int(events) for stream, events in (settle or {}).items()}
        if any(events < 0 for events in self.settle.values()):
            raise ValueError("settle counts must be >= 0")
        self.waiting = 0  # values not given to a detector: their model had not settled
        self.suppressed = 0  # cuts in the unmonitored direction
        self.updates = 0  # values seen over all streams, resets included
        self._channels: dict[str, _Channel] = {}

    @property
    def detector(self) -> str:
        """What detects, as written into alerts.

        >>> DriftMonitor(delta=0.002, clock=32).detector
        'ADWIN(delta=0.002,clock=32)'
        """
        name = f"ADWIN(delta={self.delta:g},clock={self.clock})"
        return f"{name} on {self.label}" if self.label else name

    def streams(self) -> list[str]:
        return list(self._channels)

    def count(self, stream: str) -> int:
        """Values seen on ``stream`` since its start or last :meth:`reset`."""
        channel = self._channels.get(stream)
        return channel.count if channel else 0

    def width(self, stream: str) -> int:
        channel = self._channels.get(stream)
        return int(channel.drift.width) if channel else 0

    def update(self, stream: str, value: float, learned: int | None = None) -> Detection | None:
        """Feed one value of ``stream``; the drift or warning it triggers, if any. ``learned``: how
        many labelled events the model behind the value had learned (for a stream in ``settle``;
        ``None``: the stream's count of values stands for it)."""
        channel = self._channels.get(stream)
        if channel is None:
            channel = self._channels[stream] = _Channel(self.delta, self.clock, self.warning_delta)
        channel.count += 1
        self.updates += 1
        age = channel.count - 1 if learned is None else learned  # events learned before this value
        if age < self.settle.get(stream, 0):
            self.waiting += 1
            return None
        x = self.transforms.get(stream, identity)(value)
        direction = self.directions.get(stream, "both")
        found = None
        if channel.warning is not None:
            cut = _cut(channel.warning, x)
            if cut and self._wanted(direction, cut):
                found = self._detection(stream, "warning", channel, cut)
        cut = _cut(channel.drift, x)
        if cut:
            if self._wanted(direction, cut):
                return self._detection(stream, "drift", channel, cut)
            self.suppressed += 1
        return found

    def reset(self, stream: str | None = None) -> None:
        """Forget one stream (or all): its detectors start over, its count from zero."""
        if stream is None:
            self._channels.clear()
        else:
            self._channels.pop(stream, None)

    # -- checkpoints --------------------------------------------------------------------------------
    def _config(self) -> str:
        return f"{self.detector}, warning_delta={self.warning_delta}"

    def to_checkpoint(self) -> bytes:
        """The detectors' state as bytes (see :meth:`restore`). The monitor goes on with the detectors
        read back from them, laid out as new objects (:func:`~app.learning.learner.dump_checkpoint`)."""
        blob, state = dump_checkpoint(_MAGIC, {"format": CHECKPOINT_FORMAT, "config": self._config(),
                                               "channels": self._channels, "suppressed": self.suppressed,
                                               "updates": self.updates, "waiting": self.waiting})
        self._channels = state["channels"]
        return blob

    def restore(self, data: bytes) -> "DriftMonitor":
        """Take the detectors' state saved by :meth:`to_checkpoint` (a monitor with other ADWIN
        parameters or another label cannot: :class:`~app.learning.learner.CheckpointError`);
        returns this monitor."""
        state = load_checkpoint(data, _MAGIC, "drift monitor checkpoint", CHECKPOINT_FORMAT)
        if state["config"] != self._config():
            raise CheckpointError(f"drift monitor checkpoint of {state['config']}; this monitor: {self._config()}")
        self._channels, self.suppressed, self.updates = state["channels"], state["suppressed"], state["updates"]
        self.waiting = state.get("waiting", 0)
        return self

    def __repr__(self) -> str:
        return f"DriftMonitor({self.detector}, streams={self.streams()}, updates={self.updates})"

    @staticmethod
    def _wanted(direction: str, cut: tuple[float, float, int]) -> bool:
        before, after, _ = cut
        if direction == "increase":
            return after > before
        if direction == "decrease":
            return after < before
        return True

    def _detection(self, stream: str, kind: str, channel: _Channel, cut: tuple[float, float, int]) -> Detection:
        before, after, width = cut
        return Detection(stream, kind, channel.count, before, after, width, self.detector)
