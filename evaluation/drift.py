"""Measure the drift monitor on streams whose change points are known.

    python -m evaluation.drift                        # the full suite (River generators, cards, ULB)
    python -m evaluation.drift --size quick --no-ulb  # seconds; no ULB file needed
    python -m evaluation.drift --delta 0.0001 --mitigation challenger

Each prints one line per run and, last, the summary as ``key=value`` pairs (:func:`main`).

Two kinds of runs:

* :func:`monitor_values` feeds a value stream (an input feature, e.g. ``log1p(Amount)``) to a
  :class:`~app.drift.monitor.DriftMonitor` and scores its alarms against the known change points.
* :func:`prequential` runs a learner test-then-train over a labelled stream watched by the detectors
  the drift agent runs with the same settings (:mod:`app.drift.detectors`: the configured input
  features, the score, the 0/1 error at a threshold; with the challenger policy a second, more
  sensitive ADWIN gives the error warnings), applies a mitigation policy at the alarms of the
  mitigated streams, and reports exact PR-AUC / ROC-AUC over a window after each change point. A
  change counts as detected by the first alarm of any monitored stream (one service, one alert
  topic); on a stationary stream every alarm of every monitored stream is a false alarm.

:func:`fresh_start` runs the service's own model from scratch (what a freshly started worker
does): alerts per 100,000 events on stationary streams, and the delay on a stream with a change.

Scoring of alarms (:func:`score_detections`): an alarm at position ``p`` (values seen, the firing
one included) is a *true alarm* of change point ``c`` (0-based index of the first changed value)
when ``1 <= p - c <= tolerance`` and no later change point precedes it; its *delay* is ``p - c``
events. Only the first alarm per change counts as true; later ones inside the same tolerance window
are *repeats* (the detector following the transition), counted apart. Every other alarm is a
*false alarm*; a change point with no true alarm is *missed*.

Streams (:func:`suite`): River's ``ConceptDriftStream`` over SEA and Agrawal, abrupt and gradual,
and their stationary sources; the synthetic card stream of :mod:`app.data.synthetic` with and
without a concept change; the ULB file with an injected shift (``Amount`` scaled, or the V columns
permuted, from a known offset) and, as its stationary counterpart, the ULB rows shuffled (the file
in time order is *not* stationary: amounts follow the time of day). River's ``ConceptDriftStream``
overflows for ``width`` below about ``position / 170``, so an abrupt drift at ``position`` is the
source stream followed, for its last 100 values before the change, by a width-1 ``ConceptDriftStream``
(value ``position - 1`` is new with probability 1/2, every later one with probability > 0.98; the
change point is ``position - 1``). A gradual drift is River's sigmoid of ``width`` centred on
``position``; its change point is taken where the new concept's share reaches 2 %, ``position - width``.

>>> score_detections([1010, 1500, 3000], change_points=[1000], n_events=4000, tolerance=1000)
DetectionScore(n_events=4000, change_points=1, true_alarms=1, repeats=1, false_alarms=1, missed=0, delays=[10])
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

import settings
from app.drift.detectors import feature_monitor, score_monitor, service_streams
from app.drift.mitigation import MITIGATIONS, make_mitigation
from app.drift.monitor import Detection, DriftMonitor
from app.drift.transforms import make_transform

Pair = tuple[dict, int]


@dataclass
class DetectionScore:
    n_events: int
    change_points: int
    true_alarms: int
    repeats: int
    false_alarms: int
    missed: int
    delays: list[int] = field(default_factory=list)

    @property
    def mean_delay(self) -> float:
        return float(np.mean(self.delays)) if self.delays else math.nan

    @property
    def false_alarms_per_100k(self) -> float:
        return 1e5 * self.false_alarms / self.n_events if self.n_events else math.nan


def score_detections(positions: Iterable[int], change_points: Sequence[int], n_events: int,
                     tolerance: int) -> DetectionScore:
    """Score alarm positions against known change points (see the module doc)."""
    changes = sorted(change_points)
    found: dict[int, int] = {}
    repeats = false = 0
    for p in sorted(positions):
        owner = None
        for c in changes:
            if c < p:
                owner = c
        if owner is not None and 1 <= p - owner <= tolerance:
            if owner in found:
                repeats += 1
            else:
                found[owner] = p - owner
        else:
            false += 1
    return DetectionScore(n_events, len(changes), len(found), repeats, false, len(changes) - len(found),
                          [found[c] for c in changes if c in found])


# --- streams -------------------------------------------------------------------------------------

@dataclass
class Stream:
    """A labelled stream with known change points (empty for a stationary one)."""

    name: str
    kind: str  # "abrupt", "gradual" or "stationary"
    change_points: list[int]
    make: Callable[[], Iterator[Pair]]  # a fresh iterator of (x, y) pairs
    n: int
    learner: str = "tree"  # which learner the prequential run uses
    feature: str | None = None  # the input feature monitored in the value run, if any

    def pairs(self) -> Iterator[Pair]:
        return itertools.islice(self.make(), self.n)


def river_stream(name: str, source: str, before: int, after: int | None, n: int, position: int,
                 width: int | None = None, seed: int = 1) -> Stream:
    """A River synthetic stream: ``SEA`` (variants) or ``Agrawal`` (functions), drifting at ``position``."""
    from river.datasets import synth

    def gen(variant: int, s: int):
        if source == "sea":
            return synth.SEA(variant=variant, seed=s)
        return synth.Agrawal(classification_function=variant, seed=s)

    if after is None:
        return Stream(name, "stationary", [], lambda: iter(gen(before, seed)), n)
    if width is None:  # abrupt: the last _LEAD values before the change go through a width-1 drift stream
        def make():
            head = iter(gen(before, seed))
            tail = synth.ConceptDriftStream(stream=_Continued(head, gen(before, seed)),
                                            drift_stream=gen(after, seed + 1000), position=_LEAD, width=1,
                                            seed=seed)
            return itertools.chain(itertools.islice(head, position - _LEAD), tail)

        return Stream(name, "abrupt", [position - 1], make, n)

    def make():
        return iter(synth.ConceptDriftStream(stream=gen(before, seed), drift_stream=gen(after, seed + 1000),
                                             position=position, width=width, seed=seed))

    return Stream(name, "gradual", [position - width], make, n)


_LEAD = 100


def _Continued(iterator: Iterator[Pair], like):
    """A River dataset that goes on with an already started iterator (shaped like ``like``)."""
    from river.datasets.base import SyntheticDataset

    class Continued(SyntheticDataset):
        def __init__(self) -> None:
            super().__init__(n_features=like.n_features, n_classes=like.n_classes, n_outputs=like.n_outputs,
                             task=like.task)

        def __iter__(self):
            return iterator

    return Continued()


def card_stream(name: str, n: int, drift_at: Sequence[int] = (), seed: int = 0, kind: str = "abrupt",
                fraud_rate: float = 0.0017) -> Stream:
    """The synthetic card stream of :mod:`app.data.synthetic` (a concept change moves the fraud
    signature to other V columns and changes both Amount medians)."""
    from app.data.synthetic import generate

    def make():
        for row in generate(n, seed=seed, drift_at=list(drift_at), drift_kind=kind, fraud_rate=fraud_rate,
                            include_ids=False):
            yield {k: v for k, v in row.items() if k not in ("Time", "Class")}, int(row["Class"])

    return Stream(name, kind if drift_at else "stationary", list(drift_at), make, n, learner="logreg",
                  feature="Amount")


def ulb_stream(name: str, n: int, shift: str | None = None, offset: int = 0, factor: float = 3.0,
               seed: int = 0, path: str | None = None) -> Stream:
    """The ULB rows (first ``n`` in time order) with a shift from ``offset``: ``"amount"`` (Amount
    times ``factor``), ``"permute"`` (V1..V28 permuted with ``seed``), ``"control"`` (no shift: the
    same rows in time order, ``offset`` a nominal change point, to show what alarms by chance after it),
    or ``None`` and shuffled rows (a stationary stream)."""
    from app.data import ensure_creditcard_csv, load_frame
    from app.data.columns import FEATURE_COLUMNS

    def make():
        X, _, y = load_frame(path or ensure_creditcard_csv(), limit=n)
        X = X.copy()
        rng = np.random.default_rng(seed)
        if shift is None:
            order = rng.permutation(len(y))
            X, y = X[order], y[order]
        elif shift == "amount":
            X[offset:, 28] *= factor
        elif shift == "permute":
            X[offset:, :28] = X[offset:, rng.permutation(28)]
        elif shift != "control":
            raise ValueError(f"unknown shift {shift!r}")
        for row, label in zip(X.tolist(), y.tolist()):
            yield dict(zip(FEATURE_COLUMNS, row)), int(label)

    kind = "stationary" if shift is None else "control" if shift == "control" else "abrupt"
    return Stream(name, kind, [offset] if shift else [], make, n, learner="logreg", feature="Amount")


# --- learners ------------------------------------------------------------------------------------

class RiverLearner:
    """A River classifier behind the learner interface (``predict_proba``/``learn``/``reset``)."""

    def __init__(self, factory: Callable[[], object]) -> None:
        self.factory = factory
        self.reset()

    def reset(self) -> None:
        self.model = self.factory()
        self.events_learned = 0

    def predict_proba(self, x: dict) -> float:
        proba = self.model.predict_proba_one(x)
        return float(proba.get(1, proba.get(True, 0.0)))

    def learn(self, x: dict, y: int) -> None:
        self.model.learn_one(x, int(y))
        self.events_learned += 1


def make_learner(name: str) -> RiverLearner:
    """``tree`` (Hoeffding tree), ``logreg`` (standard scaler | logistic regression) or ``service``
    (the model the settings configure: ``MODEL_KIND``, ``ARF_*``, ``LR_*``)."""
    from river import linear_model, preprocessing, tree

    if name == "service":
        from app import configured

        return RiverLearner(configured.model_factory(settings))
    if name == "tree":
        return RiverLearner(tree.HoeffdingTreeClassifier)
    if name == "logreg":
        return RiverLearner(lambda: preprocessing.StandardScaler() | linear_model.LogisticRegression())
    raise ValueError(f"unknown learner {name!r}")


# --- runs ----------------------------------------------------------------------------------------

def monitor_values(values: Iterable[float], change_points: Sequence[int], tolerance: int,
                   delta: float | None = None, clock: int | None = None, transform: str = "log1p",
                   direction: str = "both") -> tuple[DetectionScore, list[Detection]]:
    """Run one ADWIN over ``values``; its score and its detections."""
    monitor = DriftMonitor(delta, clock, transforms={"v": make_transform(transform)}, directions={"v": direction})
    detections, n = [], 0
    for value in values:
        n += 1
        found = monitor.update("v", value)
        if found is not None and found.kind == "drift":
            detections.append(found)
    return score_detections([d.position for d in detections], change_points, n, tolerance), detections


@dataclass
class PrequentialResult:
    stream: str
    mitigation: str
    score: DetectionScore  # all monitored streams together: the first alarm of any detects a change
    by_stream: dict[str, DetectionScore]  # each monitored stream alone
    alarms: list[tuple[int, str]]  # (event position, monitored stream) per drift alarm
    actions: list[tuple[int, str]]  # (event position, action) per mitigated alarm
    warnings: int
    pr_auc_after: float  # over [c, c + after) for each change point, pooled; whole stream if none
    roc_auc_after: float
    pr_auc_all: float


def _auc(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    if y.min() == y.max():
        return math.nan, math.nan
    return float(average_precision_score(y, p)), float(roc_auc_score(y, p))


def prequential(stream: Stream, mitigation: str = "none", delta: float | None = None, clock: int | None = None,
                warning_delta: float = 0.1, threshold: float = 0.5, tolerance: int = 5000, after: int = 5000,
                min_events: int = 200, max_age: int = 20000, features: Sequence[str] | None = None,
                monitor_scores: bool | None = None, mitigate_on: Sequence[str] | None = None,
                settle: int | None = None) -> PrequentialResult:
    """Test-then-train ``stream`` with its learner, watched by the detectors the drift agent runs.

    Each event feeds, as in :mod:`app.agents.drift` (see :mod:`app.drift.detectors`), the configured
    input features present in the event (``feature:<name>``), the score and the 0/1 error at
    ``threshold``. ``mitigation`` acts on the drift alarms of the streams in ``mitigate_on`` (default
    ``DRIFT_MITIGATE_ON``); warnings of the error stream start challengers. A reset or a promoted
    challenger restarts the score and error detectors (a new model). The score and error streams
    wait until the learner has learned ``settle`` events, as in the service. ``features``,
    ``monitor_scores``, ``mitigate_on`` and ``settle`` default to the settings; positions are event
    positions (1-based).
    """
    mitigate_on = settings.DRIFT_MITIGATE_ON if mitigate_on is None else mitigate_on
    features = list(settings.DRIFT_FEATURES) if features is None else features
    monitor_scores = settings.DRIFT_MONITOR_SCORES if monitor_scores is None else monitor_scores
    delta = settings.DRIFT_DELTA if delta is None else delta
    clock = settings.DRIFT_CLOCK if clock is None else clock
    settle = settings.DRIFT_SETTLE_EVENTS if settle is None else settle
    learner = make_learner(stream.learner)
    policy = make_mitigation(mitigation, min_events=min_events, max_age=max_age)
    inputs = feature_monitor(features, transform=settings.DRIFT_FEATURE_TRANSFORM, delta=delta, clock=clock)
    outputs = score_monitor(delta, clock, warning_delta=warning_delta if mitigation == "challenger" else None,
                            score_direction=settings.DRIFT_SCORE_DIRECTION, error_direction=settings.DRIFT_ERROR_DIRECTION,
                            settle=settle)
    ys, ps, alarms, actions, warnings, seen = [], [], [], [], 0, set()
    for position, (x, y) in enumerate(stream.pairs(), start=1):
        p = learner.predict_proba(x)
        ys.append(y)
        ps.append(p)
        found_all = []
        for name, value in service_streams(x, p, y, threshold, features, monitor_scores):
            seen.add(name)
            if name.startswith("feature:"):
                found = inputs.update(name, value)
            else:
                found = outputs.update(name, value, learner.events_learned)
            if found is not None:
                found_all.append(found)
        learner.learn(x, y)
        policy.observe(0, x, y)
        for found in found_all:
            if found.kind == "warning":
                if found.stream == "error":
                    warnings += policy.on_warning(0, learner)
                continue
            alarms.append((position, found.stream))
            if mitigation == "none" or found.stream not in mitigate_on:
                continue
            outcome = policy.on_drift(0, learner)
            if outcome.learner is not learner or outcome.action == "reset":  # a new model: new output streams
                outputs.reset("score")
                outputs.reset("error")
            learner = outcome.learner
            actions.append((position, outcome.action))
    y_all, p_all = np.asarray(ys), np.asarray(ps)
    if stream.change_points:
        idx = np.concatenate([np.arange(c, min(c + after, len(ys))) for c in stream.change_points])
    else:
        idx = np.arange(len(ys))
    pr_after, roc_after = _auc(y_all[idx], p_all[idx])
    n = len(ys)
    by_stream = {name: score_detections([p for p, s in alarms if s == name], stream.change_points, n, tolerance)
                 for name in sorted(seen)}
    return PrequentialResult(stream.name, mitigation,
                             score_detections([p for p, _ in alarms], stream.change_points, n, tolerance),
                             by_stream, alarms, actions, warnings, pr_after, roc_after, _auc(y_all, p_all)[0])


def feature_values(stream: Stream) -> Iterator[float]:
    """The monitored feature's values of a stream."""
    for x, _ in stream.pairs():
        yield x[stream.feature]


def suite(size: str = "full", ulb: bool = True, seed: int = 1) -> dict[str, list[Stream]]:
    """The streams of the evaluation: ``input`` shifts (the input distribution moves; the old
    one-detector baseline watches ``Amount``) and ``concept`` drifts (the label relation moves; PR-AUC
    after the change is measured without and with mitigation; the baseline watches the error).

    ``size="quick"`` is small enough for tests (a few seconds, no ULB file); ``"full"`` is the benchmark.
    The ULB ``control`` stream (time order, no shift) is in neither summary: it shows what alarms by
    chance after its nominal change point, the yardstick for the ULB shifts' delays.
    """
    quick = size == "quick"
    n, c = (6000, 3000) if quick else (40000, 20000)
    seeds = [seed] if quick else [seed, seed + 1, seed + 2]
    concept = []
    for s in seeds:
        concept += [river_stream(f"sea-abrupt-{s}", "sea", 0, 3, n, c, seed=s),
                    river_stream(f"agrawal-abrupt-{s}", "agrawal", 0, 2, n, c, seed=s)]
    concept += [river_stream(f"sea-gradual-{seed}", "sea", 0, 3, n, c, width=2000, seed=seed),
                river_stream(f"agrawal-gradual-{seed}", "agrawal", 0, 2, n, c, width=2000, seed=seed)]
    stationary_n = 20000 if quick else 200000
    concept += [river_stream(f"sea-stationary-{seed}", "sea", 0, None, stationary_n, 0, seed=seed),
                river_stream(f"agrawal-stationary-{seed}", "agrawal", 0, None, stationary_n // 2, 0, seed=seed)]
    card_n, card_c = (20000, 10000) if quick else (100000, 50000)
    concept += [card_stream(f"cards-concept-{seed}", card_n, [card_c], seed=seed)]
    inputs = [card_stream(f"cards-amount-{s}", card_n, [card_c], seed=s) for s in seeds]
    inputs += [card_stream(f"cards-stationary-{seed}", stationary_n, seed=seed)]
    if ulb and not quick:
        concept += [ulb_stream("ulb-permuted-V", 100000, "permute", 50000, seed=seed)]
        inputs += [ulb_stream("ulb-amount-x3", 100000, "amount", 50000, factor=3.0),
                   ulb_stream("ulb-amount-x1.5", 100000, "amount", 50000, factor=1.5),
                   ulb_stream("ulb-shuffled", 284807, None, seed=seed),
                   ulb_stream("ulb-control", 100000, "control", 50000)]
    return {"input": inputs, "concept": concept}


# --- the whole evaluation ------------------------------------------------------------------------

def _mean(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


class _Tally:
    """Abrupt / gradual / stationary figures over the scored runs."""

    def __init__(self) -> None:
        self.delays: list[int] = []
        self.missed = self.true_alarms = self.stationary_events = self.stationary_false = 0
        self.gradual_delays: list[int] = []
        self.gradual_missed = 0

    def add(self, kind: str, score: DetectionScore) -> None:
        if kind == "stationary":
            self.stationary_events += score.n_events
            self.stationary_false += score.false_alarms
        elif kind == "abrupt":
            self.delays.extend(score.delays)
            self.missed += score.missed
            self.true_alarms += score.true_alarms
        elif kind == "gradual":
            self.gradual_delays.extend(score.delays)
            self.gradual_missed += score.missed

    @property
    def false_alarms_per_100k(self) -> float:
        return 1e5 * self.stationary_false / self.stationary_events if self.stationary_events else math.nan


def _by_stream(result: PrequentialResult) -> str:
    """``stream=first delay/false alarms`` for each monitored stream ('-': no true alarm)."""
    parts = []
    for name, score in result.by_stream.items():
        first = score.delays[0] if score.delays else "-"
        parts.append(f"{name}={first}/{score.false_alarms}")
    return " ".join(parts)


def evaluate(size: str = "full", ulb: bool = True, mitigation: str = "reset", delta: float | None = None,
             clock: int | None = None, warning_delta: float = 0.1, tolerance: int = 5000,
             progress: Callable[[str], None] | None = print) -> dict[str, float]:
    """Run :func:`suite`; print one line per run through ``progress``; return the summary figures.

    Every stream is run as the service watches it (:func:`prequential` without mitigation: input
    features, score and error together). ``mean_delay``, ``missed`` and ``true_alarms`` are over the
    abrupt drifts, a drift detected by the first alarm of any monitored stream; ``false_alarms_per_100k``
    counts the alarms of all monitored streams on the stationary streams. The PR-AUC figures are the
    mean, over the concept drifts, of the PR-AUC after the change without and with ``mitigation``;
    ``*_gradual`` figures are the gradual drifts'. ``baseline_*`` is the same run scored as a single
    stream kind per scenario (``feature:Amount`` for input shifts, ``error`` for concept drifts).
    """
    say = progress or (lambda line: None)
    streams = suite(size, ulb=ulb)
    service, baseline = _Tally(), _Tally()
    pr_none, pr_mitigated, roc_none, roc_mitigated = [], [], [], []
    for group, single in (("input", "feature:Amount"), ("concept", "error")):
        for stream in streams[group]:
            after = stream.n - min(stream.change_points) if stream.change_points else stream.n
            base = prequential(stream, "none", delta, clock, warning_delta, tolerance=tolerance, after=after)
            service.add(stream.kind, base.score)
            alone = base.by_stream.get(single, score_detections([], stream.change_points, base.score.n_events,
                                                                tolerance))
            baseline.add(stream.kind, alone)
            score = base.score
            line = (f"{group:7s} {stream.name:22s} {stream.kind:10s} n={score.n_events:6d} delays={score.delays} "
                    f"false={score.false_alarms} repeats={score.repeats} missed={score.missed} "
                    f"| by stream (first delay/false): {_by_stream(base)}")
            if group == "concept":
                line += f" | pr_auc_after none={base.pr_auc_after:.3f}"
                if stream.change_points and mitigation != "none":
                    other = prequential(stream, mitigation, delta, clock, warning_delta, tolerance=tolerance,
                                        after=after)
                    line += (f" {mitigation}={other.pr_auc_after:.3f} (roc {base.roc_auc_after:.3f} -> "
                             f"{other.roc_auc_after:.3f}) actions={[a for _, a in other.actions][:5]}"
                             f" warnings={other.warnings}")
                    pr_none.append(base.pr_auc_after)
                    pr_mitigated.append(other.pr_auc_after)
                    roc_none.append(base.roc_auc_after)
                    roc_mitigated.append(other.roc_auc_after)
            say(line)
    return {
        "mean_delay": _mean(service.delays),
        "max_delay": float(max(service.delays)) if service.delays else math.nan,
        "true_alarms": service.true_alarms,
        "missed": service.missed,
        "false_alarms_per_100k": service.false_alarms_per_100k,
        "stationary_events": service.stationary_events,
        "stationary_false_alarms": service.stationary_false,
        "mean_delay_gradual": _mean(service.gradual_delays),
        "missed_gradual": service.gradual_missed,
        "pr_auc_after_no_mitigation": _mean(pr_none),
        "pr_auc_after_mitigation": _mean(pr_mitigated),
        "roc_auc_after_no_mitigation": _mean(roc_none),
        "roc_auc_after_mitigation": _mean(roc_mitigated),
        "baseline_mean_delay": _mean(baseline.delays),
        "baseline_missed": baseline.missed,
        "baseline_false_alarms_per_100k": baseline.false_alarms_per_100k,
    }


def fresh_start(size: str = "full", ulb: bool = True, tolerance: int = 5000,
                progress: Callable[[str], None] | None = print) -> dict[str, float]:
    """A fresh worker's alerts: the service's model (:func:`make_learner` ``service``) from scratch,
    watched by the monitors the settings configure (features, score and error, ``DRIFT_SETTLE_EVENTS``).

    ``fresh_alerts_per_100k``: every alert of every monitored stream on stationary streams (the
    synthetic card stream, and the ULB rows shuffled unless ``ulb`` is false), per 100,000 events.
    ``fresh_delay``: on the synthetic card stream with a concept change (the fraud signature and both
    Amount medians move) half-way, the delay of the first alert after it; ``fresh_output_delay``: of
    the first alert of the score or error stream alone (NaN: none within ``tolerance``);
    ``fresh_change_false_alarms``: that stream's alerts outside ``tolerance`` events after the change.
    ``size="quick"`` runs 20,000 events per stream instead of 100,000.
    """
    say = progress or (lambda line: None)
    n = 20000 if size == "quick" else 100000
    stationary = [card_stream("cards-stationary-fresh", n, seed=7)]
    if ulb and size != "quick":
        stationary.append(ulb_stream("ulb-shuffled-fresh", n, None, seed=7))
    events = alerts = 0
    for stream in stationary:
        result = prequential(dataclasses.replace(stream, learner="service"), "none", tolerance=tolerance)
        events += result.score.n_events
        alerts += len(result.alarms)
        say(f"fresh   {stream.name:22s} stationary n={result.score.n_events:6d} alerts={result.alarms}")
    change = card_stream("cards-concept-fresh", n, [n // 2], seed=7)
    result = prequential(dataclasses.replace(change, learner="service"), "none", tolerance=tolerance)
    outputs = sorted(p - change.change_points[0] for p, name in result.alarms
                     if name in ("score", "error") and 0 < p - change.change_points[0] <= tolerance)
    say(f"fresh   {change.name:22s} abrupt     n={result.score.n_events:6d} delays={result.score.delays} "
        f"false={result.score.false_alarms} | by stream (first delay/false): {_by_stream(result)}")
    return {
        "fresh_alerts_per_100k": 1e5 * alerts / events,
        "fresh_events": events,
        "fresh_alerts": alerts,
        "fresh_delay": float(result.score.delays[0]) if result.score.delays else math.nan,
        "fresh_output_delay": float(outputs[0]) if outputs else math.nan,
        "fresh_change_false_alarms": result.score.false_alarms,
    }


def summary_line(summary: dict[str, float], mitigation: str) -> str:
    """The one ``key=value`` line of a summary.

    >>> summary_line({"mean_delay": 40.0, "missed": 0}, "reset")
    'mean_delay=40 missed=0 mitigation=reset'
    """
    parts = [f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}" for key, value in summary.items()]
    return " ".join(parts + [f"mitigation={mitigation}"])


def main(argv: list[str] | None = None) -> int:
    """The command line: :func:`evaluate` with the settings' drift defaults unless given, then
    :func:`summary_line`."""
    parser = argparse.ArgumentParser(prog="python -m evaluation.drift", description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=("quick", "full"), default="full")
    parser.add_argument("--no-ulb", action="store_true", help="skip the ULB streams")
    parser.add_argument("--delta", type=float, default=settings.DRIFT_DELTA)
    parser.add_argument("--clock", type=int, default=settings.DRIFT_CLOCK)
    parser.add_argument("--warning-delta", type=float, default=settings.DRIFT_WARNING_DELTA)
    parser.add_argument("--mitigation", choices=[m for m in MITIGATIONS if m != "none"], default="reset")
    parser.add_argument("--tolerance", type=int, default=5000, help="events after a change an alarm counts as true")
    args = parser.parse_args(argv)
    summary = evaluate(args.size, ulb=not args.no_ulb, mitigation=args.mitigation, delta=args.delta,
                       clock=args.clock, warning_delta=args.warning_delta, tolerance=args.tolerance)
    print(summary_line(summary, args.mitigation))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
