"""What scaling out costs the model: partitions, snapshot staleness and negative subsampling.

    python -m evaluation.scaleout                            # every study, full ULB file (over an hour)
    python -m evaluation.scaleout --study partitions --partitions 1,8
    python -m evaluation.scaleout --study staleness --every 100,1000,10000,1000ms --rate 1000
    python -m evaluation.scaleout --study staleness --every 100,1000 --staleness-sample 0.1
    python -m evaluation.scaleout --study sampling --sample 0.5,0.2,0.1
    python -m evaluation.scaleout --study order --order-partitions 8 --window 4000
    python -m evaluation.scaleout --study local --local-partitions 8 --local-every 1000
    python -m evaluation.scaleout --rows 20000 --trees 3    # a quick look

Offline and in one process: the ULB rows in file (event-time) order, each labelled in its event, the
service's model (:func:`app.learning.pipeline.model_factory` with the configured parameters), exact
prequential metrics (:func:`app.learning.evaluation.exact_metrics`). Five studies:

* ``partitions`` - today's design: ``N`` partitions, each row on the partition of its transaction id
  (the producer's keyed partitioner, :func:`partition_of`), one model per partition that predicts
  then learns only its partition's rows. ``N = 1`` is the plain loop; the run also times predict and
  learn apart (CPU per event), which give the capacity of a scorer (predict only) and of a learner
  (predict then learn).
* ``staleness`` - the proposed design: one learner predicts then learns every row in order (its
  predictions are the plain loop's); scorers predict each row with the learner's last *snapshot*,
  taken every ``K`` learned rows or every ``T`` ms, whichever comes first (:class:`SnapshotSchedule`;
  the clock is simulated: rows arrive at ``--rate`` per second). A snapshot is what a scorer would
  receive: the model pickled and unpickled, so the run also gives its size and its cost. The metrics
  of each schedule's predictions are what staleness costs; :class:`Staleness` records how many
  learned rows each prediction's snapshot lacked.
* ``order`` - one learner fed by several partitions: it takes the rows in the order a consumer of
  ``--order-partitions`` partitions would (:func:`interleaved`: each partition in order, the
  partitions one after the other within windows of ``--window`` rows), not in file order. What one
  worker holding all partitions learns, against the plain loop.
* ``local`` - scorers whose replica also learns some of its own partition's examples (the frauds,
  or all) between two snapshots, every ``--local-every`` rows, over ``--local-partitions``
  partitions (:func:`run_local`): how much of the staleness cost that recovers, for what CPU.
* ``sampling`` - negative subsampling: the learner learns every fraud and a share ``r`` of the
  genuine rows (:func:`keep_for_learning`: chosen by a hash of the transaction id, so a replay after
  a failover makes the same choices) and predicts every row. The model then believes frauds are
  ``1/r`` times as common as they are; :func:`corrected` maps its probability back. The AUCs do not
  change (the correction keeps the order); precision and recall at the decision threshold, and the
  mean probability against the fraud rate, do. CPU per row of the stream is that of the learner when
  scorers send it only the rows it keeps.

Each study prints a progress line to stderr every ``--progress`` rows, one table row per
configuration, and, last, the figures as ``key=value`` pairs.

The machine is shared: CPU figures are process CPU time (``time.process_time``), not wall time.
"""
from __future__ import annotations

import argparse
import math
import pickle
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np

from app.learning import subsampling
from app.learning.evaluation import exact_metrics

THRESHOLD = 0.5


# -- the pure pieces -----------------------------------------------------------------------------------

def transaction_id(index: int, prefix: str = "tx") -> str:
    """The id the replay producer gives the ``index``-th row (:func:`app.replay.transaction_id`).

    >>> transaction_id(42)
    'tx-000000042'
    """
    return f"{prefix}-{index:09d}"


def partition_of(key: str, partitions: int) -> int:
    """The partition a keyed Kafka producer (aiokafka's and the Java client's default partitioner)
    writes ``key`` to: ``murmur2(key) & 0x7fffffff`` modulo the partition count.

    >>> partition_of("tx-000000042", 1)
    0
    >>> sorted({partition_of(transaction_id(i), 8) for i in range(100)})
    [0, 1, 2, 3, 4, 5, 6, 7]
    """
    from aiokafka.partitioner import murmur2

    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def interleaved(n: int, partitions: int, window: int) -> np.ndarray:
    """The order one consumer of ``partitions`` partitions may take ``n`` keyed rows in: each
    partition's rows in their order, the partitions one after the other within each ``window`` of
    rows (a fetch returns a batch per partition). The indices of the rows, in that order.

    >>> [partition_of(transaction_id(i), 2) for i in range(8)]
    [0, 0, 0, 0, 1, 1, 0, 0]
    >>> interleaved(8, 2, window=4).tolist()  # in the second window, partition 0's rows 6, 7 first
    [0, 1, 2, 3, 6, 7, 4, 5]
    """
    owner = np.array([partition_of(transaction_id(i), partitions) for i in range(n)])
    order = [start + np.argsort(owner[start:start + window], kind="stable") for start in range(0, n, window)]
    return np.concatenate(order) if order else np.empty(0, dtype=np.int64)


#: The learner's choice and the scorers' correction are the service's own (:mod:`app.learning.subsampling`),
#: so the study measures what the worker does.
keep_for_learning = subsampling.keep
corrected = subsampling.correct


@dataclass
class SnapshotSchedule:
    """When the learner publishes a snapshot: after every ``every_events`` learned events or
    ``every_ms`` milliseconds since the last one, whichever comes first (``None``: that bound is off).
    The first snapshot is the untrained model at learned count 0.

    >>> s = SnapshotSchedule(every_events=3, every_ms=100.0)
    >>> [s.due(n, now_ms=10.0 * n) for n in range(1, 8)]  # by count at 3 and 6
    [False, False, True, False, False, True, False]
    >>> s = SnapshotSchedule(every_events=None, every_ms=25.0)
    >>> [n for n in range(1, 11) if s.due(n, now_ms=10.0 * n)]  # by time at 30, 60 and 90 ms
    [3, 6, 9]
    >>> SnapshotSchedule.parse("1000"), SnapshotSchedule.parse("250ms").label
    (SnapshotSchedule(every_events=1000, every_ms=None), 'T=250ms')
    """

    every_events: int | None = None
    every_ms: float | None = None
    _last_count: int = field(default=0, repr=False)
    _last_ms: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        if self.every_events is None and self.every_ms is None:
            raise ValueError("a snapshot schedule needs every_events, every_ms or both")
        if self.every_events is not None and self.every_events < 1:
            raise ValueError(f"every_events must be at least 1, got {self.every_events}")
        if self.every_ms is not None and not self.every_ms > 0:
            raise ValueError(f"every_ms must be more than 0, got {self.every_ms}")

    @classmethod
    def parse(cls, text: str) -> "SnapshotSchedule":
        """``"1000"``: every 1000 learned events; ``"250ms"``: every 250 ms."""
        text = text.strip()
        if text.endswith("ms"):
            return cls(every_ms=float(text[:-2]))
        return cls(every_events=int(text))

    @property
    def label(self) -> str:
        parts = []
        if self.every_events is not None:
            parts.append(f"K={self.every_events}")
        if self.every_ms is not None:
            parts.append(f"T={self.every_ms:g}ms")
        return " ".join(parts)

    def due(self, learned: int, now_ms: float) -> bool:
        """Whether a snapshot is due now that the learner has learned ``learned`` events; a ``True``
        answer counts as taken."""
        if ((self.every_events is not None and learned - self._last_count >= self.every_events)
                or (self.every_ms is not None and now_ms - self._last_ms >= self.every_ms)):
            self._last_count, self._last_ms = learned, now_ms
            return True
        return False


class Staleness:
    """How many learned events the snapshot behind each prediction lacked: the learner's count when
    the prediction was made minus the count the snapshot was taken at.

    >>> s = Staleness()
    >>> for learned, version in [(0, 0), (1, 0), (2, 0), (3, 3), (4, 3)]:
    ...     s.record(learned, version)
    >>> s.median, s.max, s.mean
    (1.0, 2, 0.8)
    """

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self.n = 0

    def record(self, learned: int, version: int) -> None:
        lag = learned - version
        if lag < 0:
            raise ValueError(f"a snapshot of {version} learned events cannot be newer than the learner ({learned})")
        self._counts[lag] = self._counts.get(lag, 0) + 1
        self.n += 1

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (0..1) of the lags, the midpoint of the two middle ones for a median
        of an even count."""
        if not self.n:
            return math.nan
        lags = sorted(self._counts)
        def at(rank: int) -> int:
            seen = 0
            for lag in lags:
                seen += self._counts[lag]
                if seen > rank:
                    return lag
            return lags[-1]
        position = q * (self.n - 1)
        low, high = at(math.floor(position)), at(math.ceil(position))
        return low + (high - low) * (position - math.floor(position))

    @property
    def median(self) -> float:
        return self.quantile(0.5)

    @property
    def max(self) -> int:
        return max(self._counts) if self._counts else 0

    @property
    def mean(self) -> float:
        return sum(lag * c for lag, c in self._counts.items()) / self.n if self.n else math.nan


def snapshot(model):
    """A scorer's replica of ``model``: what it would get from a snapshot topic (a pickle round trip),
    and the pickle's size in bytes."""
    data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    return pickle.loads(data), len(data)


# -- the data --------------------------------------------------------------------------------------------

@dataclass
class Rows:
    """The rows as the scorer sees them: feature matrix (``FEATURE_NAMES`` order), labels, ids."""

    X: np.ndarray
    y: np.ndarray
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.y)

    def events(self) -> Iterator[tuple[int, dict, int]]:
        """``(index, features, label)`` of each row, in order; features as the scorer passes them."""
        names = self.names
        for i, (row, label) in enumerate(zip(self.X.tolist(), self.y.tolist())):
            yield i, dict(zip(names, row)), label


def load_rows(limit: int | None = None, path: str | None = None) -> Rows:
    """The ULB file's first ``limit`` rows (all by default; ``path``: a copy of ``creditcard.csv``)."""
    from app.data.columns import FEATURE_COLUMNS
    from app.data.ulb import ensure_creditcard_csv, load_frame
    from app.records.transaction import FEATURE_NAMES

    assert tuple(FEATURE_COLUMNS) == tuple(FEATURE_NAMES)  # the loader's columns are the model's features
    frame = load_frame(ensure_creditcard_csv(path), limit=limit)
    return Rows(frame.X, frame.y, tuple(FEATURE_NAMES))


class Progress:
    """A line on stderr every ``every`` events: position, rate, estimated time left."""

    def __init__(self, what: str, total: int, every: int) -> None:
        self.what, self.total, self.every = what, total, every
        self.started = time.perf_counter()

    def __call__(self, done: int) -> None:
        if self.every and done % self.every == 0 and done:
            elapsed = time.perf_counter() - self.started
            left = (self.total - done) * elapsed / done
            print(f"[{self.what}] {done:,}/{self.total:,} {done / elapsed:,.0f} ev/s, ~{left:,.0f} s left",
                  file=sys.stderr, flush=True)


def metrics_of(y, p) -> dict:
    m = exact_metrics(y, p, THRESHOLD)
    return {"roc_auc": m["roc_auc"], "pr_auc": m["pr_auc"], "precision": m["precision"], "recall": m["recall"]}


# -- the studies ---------------------------------------------------------------------------------------

def run_partitions(rows: Rows, factory: Callable, partitions: int, progress_every: int = 0) -> dict:
    """Today's design: one model per partition, each row predicted then learned by its partition's.
    Also the CPU of predict and of learn per event (process time), and, for one partition, the CPU of
    a predict by the trained model over the last rows again (a scorer's steady state)."""
    models = [factory() for _ in range(partitions)]
    owner = [partition_of(transaction_id(i), partitions) for i in range(len(rows))] if partitions > 1 else None
    p = np.empty(len(rows))
    predict_s = learn_s = 0.0
    clock = time.process_time
    tick = Progress(f"partitions={partitions}", len(rows), progress_every)
    for i, x, y in rows.events():
        model = models[owner[i]] if owner else models[0]
        t0 = clock()
        p[i] = model.predict_proba_one(x).get(1, 0.0)
        t1 = clock()
        model.learn_one(x, y)
        learn_s += clock() - t1
        predict_s += t1 - t0
        tick(i + 1)
    n = len(rows)
    out = {"partitions": partitions, **metrics_of(rows.y, p), "p": p,
           "predict_ms": 1000 * predict_s / n, "learn_ms": 1000 * learn_s / n,
           "frauds_per_model": [int(rows.y[[o == k for o in owner]].sum()) if owner else int(rows.y.sum())
                                for k in range(partitions)]}
    if partitions == 1:
        tail = min(n, 10_000)
        model, started = models[0], clock()
        for i, x, _ in rows.events():
            if i >= n - tail:
                model.predict_proba_one(x)
        out["trained_predict_ms"] = 1000 * (clock() - started) / tail
    return out


def run_staleness(rows: Rows, factory: Callable, schedules: Sequence[SnapshotSchedule], rate: float,
                  progress_every: int = 0, sample_rate: float = 1.0) -> dict:
    """The proposed design: one learner predicts then learns every row; each schedule's scorer predicts
    with the learner's last snapshot under that schedule. Rows arrive ``rate`` per second (the clock
    of the ``every_ms`` bounds). Returns the learner's record and, per schedule, the metrics, the
    staleness and the snapshots' count, size and cost.

    With ``sample_rate`` below 1 the learner learns only the examples :func:`keep_for_learning`
    keeps, and every probability is :func:`corrected`; the schedules and the staleness still count
    every example the learner received (kept or not)."""
    learner = factory()
    replicas = [snapshot(learner)[0] for _ in schedules]
    versions = [0] * len(schedules)
    lags = [Staleness() for _ in schedules]
    taken = [{"count": 0, "bytes": [], "cpu_s": 0.0} for _ in schedules]
    p_learner = np.empty(len(rows))
    p_scorers = np.empty((len(schedules), len(rows)))
    clock = time.process_time
    tick = Progress("staleness", len(rows), progress_every)
    for i, x, y in rows.events():
        for s in range(len(schedules)):
            p_scorers[s, i] = replicas[s].predict_proba_one(x).get(1, 0.0)
            lags[s].record(i, versions[s])
        p_learner[i] = learner.predict_proba_one(x).get(1, 0.0)
        if sample_rate >= 1.0 or keep_for_learning(transaction_id(i), y, sample_rate):
            learner.learn_one(x, y)
        learned, now_ms = i + 1, 1000.0 * (i + 1) / rate
        for s, schedule in enumerate(schedules):
            if schedule.due(learned, now_ms):
                t0 = clock()
                replicas[s], size = snapshot(learner)
                taken[s]["cpu_s"] += clock() - t0
                taken[s]["count"] += 1
                taken[s]["bytes"].append(size)
                versions[s] = learned
        tick(i + 1)
    if sample_rate < 1.0:
        p_learner = np.array([corrected(v, sample_rate) for v in p_learner.tolist()])
        p_scorers = np.array([[corrected(v, sample_rate) for v in row.tolist()] for row in p_scorers])
    runs = []
    for s, schedule in enumerate(schedules):
        sizes = taken[s]["bytes"]
        runs.append({
            "schedule": schedule.label, **metrics_of(rows.y, p_scorers[s]),
            "staleness_p50": lags[s].median, "staleness_mean": lags[s].mean, "staleness_max": lags[s].max,
            "snapshots": taken[s]["count"], "snapshot_mb_last": (sizes[-1] if sizes else 0) / 1e6,
            "snapshot_ms": 1000 * taken[s]["cpu_s"] / max(1, taken[s]["count"]),
        })
    return {"learner": metrics_of(rows.y, p_learner), "schedules": runs, "rate": rate, "sample_rate": sample_rate}


LOCAL_MODES = ("none", "frauds", "all")


def learns_locally(mode: str, label: int) -> bool:
    """Whether a scorer's replica learns its own partition's example in local ``mode``: ``none``
    (the replica is the snapshot), ``frauds`` (the frauds only) or ``all``.

    >>> [learns_locally(m, y) for m in LOCAL_MODES for y in (0, 1)]
    [False, False, False, True, True, True]
    """
    if mode not in LOCAL_MODES:
        raise ValueError(f"unknown local mode {mode!r} (known: {', '.join(LOCAL_MODES)})")
    return mode == "all" or (mode == "frauds" and bool(label))


def run_local(rows: Rows, factory: Callable, partitions: int, every: int, modes: Sequence[str],
              progress_every: int = 0) -> dict:
    """Scorers that learn between snapshots: one learner learns every row in order and publishes a
    snapshot every ``every`` rows; the scorer of each of ``partitions`` partitions predicts its rows
    with its replica, which, in each of ``modes`` (:func:`learns_locally`), also learns some of its
    own partition's examples until the next snapshot replaces it. Per mode: the metrics and the CPU
    per row a scorer spends learning."""
    for mode in modes:
        learns_locally(mode, 0)
    learner = factory()
    owner = [partition_of(transaction_id(i), partitions) for i in range(len(rows))]
    fresh = pickle.dumps(learner, protocol=pickle.HIGHEST_PROTOCOL)
    replicas = [[pickle.loads(fresh) for _ in range(partitions)] for _ in modes]
    p = np.empty((len(modes), len(rows)))
    local_s = [0.0] * len(modes)
    clock = time.process_time
    tick = Progress(f"local K={every}", len(rows), progress_every)
    for i, x, y in rows.events():
        k = owner[i]
        for m, mode in enumerate(modes):
            replica = replicas[m][k]
            p[m, i] = replica.predict_proba_one(x).get(1, 0.0)
            if learns_locally(mode, y):
                t0 = clock()
                replica.learn_one(x, y)
                local_s[m] += clock() - t0
        learner.learn_one(x, y)
        if (i + 1) % every == 0:
            fresh = pickle.dumps(learner, protocol=pickle.HIGHEST_PROTOCOL)
            replicas = [[pickle.loads(fresh) for _ in range(partitions)] for _ in modes]
        tick(i + 1)
    return {"partitions": partitions, "every": every,
            "modes": [{"mode": mode, **metrics_of(rows.y, p[m]), "local_learn_ms": 1000 * local_s[m] / len(rows)}
                      for m, mode in enumerate(modes)]}


def run_sampling(rows: Rows, factory: Callable, rate: float, progress_every: int = 0) -> dict:
    """Negative subsampling at ``rate``: the model predicts every row (before learning it), learns the
    kept ones. Metrics of the raw and of the corrected probabilities; the learner's CPU per row of the
    stream (predict and learn of the kept rows only, what a learner fed only those would spend)."""
    model = factory()
    p = np.empty(len(rows))
    kept = 0
    learner_s = 0.0
    clock = time.process_time
    tick = Progress(f"sampling r={rate:g}", len(rows), progress_every)
    for i, x, y in rows.events():
        keep = keep_for_learning(transaction_id(i), y, rate)
        t0 = clock()
        p[i] = model.predict_proba_one(x).get(1, 0.0)
        if keep:
            model.learn_one(x, y)
            learner_s += clock() - t0
            kept += 1
        tick(i + 1)
    p_corrected = np.array([corrected(v, rate) for v in p.tolist()])
    raw, fixed = metrics_of(rows.y, p), metrics_of(rows.y, p_corrected)
    n = len(rows)
    return {"rate": rate, **fixed, "raw_precision": raw["precision"], "raw_recall": raw["recall"],
            "raw_pr_auc": raw["pr_auc"], "kept": kept, "kept_share": kept / n,
            "mean_p_raw": float(p.mean()), "mean_p": float(p_corrected.mean()), "fraud_rate": float(rows.y.mean()),
            "learner_ms": 1000 * learner_s / n, "learner_max_eps": n / learner_s if learner_s else math.inf}


def run_versions(rows: Rows, factory: Callable, rate: float, example_rows: Sequence[int], learned: np.ndarray,
                 progress_every: int = 0) -> dict:
    """A service run replayed: row ``k`` predicted by the model that took in the first ``learned[k]``
    examples of the topic, whose file rows are ``example_rows`` in the topic's order (kept for
    learning at ``rate`` as the learner keeps them; probabilities corrected), as
    ``benchmarks.scaleout --save`` records them. With ``example_rows`` in the topic's order this is
    the run's own scores (a check of the replay); sorted, it is the same staleness in examples with
    the examples in file order (no partition ahead of another): the difference is what the
    partitions' running apart costs."""
    xs = [x for _, x, _ in rows.events()]
    y = rows.y.tolist()
    model = factory()
    p = np.empty(len(rows))
    taken = 0
    tick = Progress(f"versions r={rate:g}", len(rows), progress_every)
    for done, k in enumerate(np.argsort(learned, kind="stable").tolist()):
        while taken < min(int(learned[k]), len(example_rows)):
            j = int(example_rows[taken])
            if keep_for_learning(transaction_id(j), y[j], rate):
                model.predict_proba_one(xs[j])  # the learner predicts each example before it learns it
                model.learn_one(xs[j], y[j])
            taken += 1
        probability = model.predict_proba_one(xs[k]).get(1, 0.0)
        # before the first snapshot a replica serves its own model, learned from nothing: uncorrected
        p[k] = corrected(probability, rate) if learned[k] else probability
        tick(done + 1)
    return metrics_of(rows.y, p)


# -- the command --------------------------------------------------------------------------------------

def _f(v, digits: int = 4) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def _table(header: Sequence[str], lines: Sequence[Sequence]) -> str:
    cells = [list(header)] + [[_f(v) for v in line] for line in lines]
    widths = [max(len(row[c]) for row in cells) for c in range(len(header))]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in cells)


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.scaleout", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", choices=("all", "partitions", "staleness", "order", "local", "sampling", "versions"),
                    default="all")
    ap.add_argument("--versions", default=None,
                    help="versions study: a file of benchmarks.scaleout --save (the run's versions and example order)")
    ap.add_argument("--rows", type=int, default=None, help="first ULB rows (default: all 284,807)")
    ap.add_argument("--csv", default=None, help="a copy of creditcard.csv (default: the verified cache)")
    ap.add_argument("--kind", default=None, help="model kind (default: the setting, arf+lr)")
    ap.add_argument("--trees", type=int, default=None, help="ARF trees (default: the setting)")
    ap.add_argument("--partitions", default="1,8", help="partition counts of today's design")
    ap.add_argument("--every", default="100,1000,10000",
                    help="snapshot schedules: a count of learned events, or e.g. 500ms")
    ap.add_argument("--rate", type=float, default=1000.0,
                    help="events/s arriving, the clock of the ms schedules (default 1000)")
    ap.add_argument("--staleness-sample", type=float, default=1.0,
                    help="share of genuine examples the learner learns in the staleness study (default 1: all)")
    ap.add_argument("--order-partitions", type=int, default=8, help="partitions feeding the learner (order study)")
    ap.add_argument("--window", type=int, default=4000,
                    help="rows within which the partitions' rows are taken one partition after the other")
    ap.add_argument("--local-partitions", type=int, default=8, help="partitions of the local study")
    ap.add_argument("--local-every", type=int, default=1000, help="snapshot every this many rows (local study)")
    ap.add_argument("--local-modes", default="none,frauds,all", help="what the replicas learn (local study)")
    ap.add_argument("--sample", default="0.5,0.2,0.1", help="shares of genuine examples learned")
    ap.add_argument("--progress", type=int, default=20_000, help="a progress line every this many rows (0: none)")
    args = ap.parse_args(argv)

    import settings
    from app import configured

    overrides = {k: v for k, v in (("kind", args.kind), ("trees", args.trees)) if v}
    factory = configured.model_factory(settings, **overrides)
    params = {**configured.model_params(settings), **overrides}
    rows = load_rows(args.rows, args.csv)
    print(f"rows={len(rows)} frauds={int(rows.y.sum())} model={params}", flush=True)
    figures: dict[str, object] = {"rows": len(rows), "model": params["kind"] + (
        f"/{params['trees']}" if "arf" in params["kind"] else "")}
    started = time.perf_counter()

    if args.study in ("all", "partitions"):
        lines = []
        for n in (int(v) for v in args.partitions.split(",")):
            r = run_partitions(rows, factory, n, args.progress)
            lines.append([n, r["pr_auc"], r["roc_auc"], r["precision"], r["recall"], r["predict_ms"], r["learn_ms"],
                          min(r["frauds_per_model"])])
            figures[f"pr_auc_p{n}"], figures[f"roc_auc_p{n}"] = round(r["pr_auc"], 4), round(r["roc_auc"], 4)
            if n == 1:
                figures["predict_ms"] = round(r["predict_ms"], 4)
                figures["learn_ms"] = round(r["learn_ms"], 4)
                figures["trained_predict_ms"] = round(r["trained_predict_ms"], 4)
                figures["scorer_max_eps"] = round(1000 / r["trained_predict_ms"])
                figures["learner_max_eps"] = round(1000 / (r["predict_ms"] + r["learn_ms"]))
        print("\ntoday's design: one model per partition (CPU ms per event, process time)")
        print(_table(["partitions", "pr_auc", "roc_auc", "precision", "recall", "predict_ms", "learn_ms",
                      "min_frauds"], lines), flush=True)
        if "trained_predict_ms" in figures:
            print(f"trained model, predict only: {figures['trained_predict_ms']} ms/event "
                  f"(a scorer's core: ~{figures['scorer_max_eps']} ev/s); predict+learn over the run: "
                  f"~{figures['learner_max_eps']} ev/s per core", flush=True)

    if args.study == "versions":
        if not args.versions:
            ap.error("--study versions needs --versions FILE (from benchmarks.scaleout --save)")
        saved = np.load(args.versions)
        rate, learned, order = float(saved["rate"]), saved["learned"], saved["example_rows"].tolist()
        if len(learned) != len(rows):
            ap.error(f"{args.versions} holds {len(learned)} rows, --rows gives {len(rows)}")
        lines = []
        for name, example_rows in (("the run's example order", order), ("the examples in file order", sorted(order))):
            r = run_versions(rows, factory, rate, example_rows, learned, args.progress)
            lines.append([name, r["pr_auc"], r["roc_auc"], r["precision"], r["recall"]])
            key = "run" if example_rows is order else "file_order"
            figures[f"pr_auc_versions_{key}"], figures[f"roc_auc_versions_{key}"] = (round(r["pr_auc"], 4),
                                                                                   round(r["roc_auc"], 4))
        print(f"\na service run replayed (r={rate:g}; each row predicted by its score's version)")
        print(_table(["examples", "pr_auc", "roc_auc", "precision", "recall"], lines), flush=True)

    if args.study in ("all", "staleness"):
        schedules = [SnapshotSchedule.parse(v) for v in args.every.split(",") if v.strip()]
        r = run_staleness(rows, factory, schedules, args.rate, args.progress, args.staleness_sample)
        learner = r["learner"]
        lines = [["learner (K=1)", learner["pr_auc"], learner["roc_auc"], learner["precision"], learner["recall"],
                  0.0, 0, 0, "", ""]]
        for s in r["schedules"]:
            lines.append([s["schedule"], s["pr_auc"], s["roc_auc"], s["precision"], s["recall"], s["staleness_p50"],
                          s["staleness_max"], s["snapshots"], _f(s["snapshot_mb_last"], 2), _f(s["snapshot_ms"], 1)])
            key = s["schedule"].replace("K=", "k").replace("T=", "t").replace(" ", "_")
            if args.staleness_sample < 1:
                key += f"_r{args.staleness_sample:g}"
            figures[f"pr_auc_{key}"], figures[f"roc_auc_{key}"] = round(s["pr_auc"], 4), round(s["roc_auc"], 4)
            figures[f"staleness_p50_{key}"] = s["staleness_p50"]
        figures["pr_auc_learner" + (f"_r{args.staleness_sample:g}" if args.staleness_sample < 1 else "")] = round(
            learner["pr_auc"], 4)
        figures["snapshot_mb"] = round(max(s["snapshot_mb_last"] for s in r["schedules"]), 2)
        figures["snapshot_ms"] = round(statistics.mean(s["snapshot_ms"] for s in r["schedules"]), 1)
        sampled = f", the learner learning every fraud and {args.staleness_sample:g} of the genuine examples" if (
            args.staleness_sample < 1) else ""
        print(f"\nproposed design{sampled}: scorers predict with a snapshot (rows arrive at {args.rate:g}/s; "
              "staleness in examples received; the last snapshot's size, a snapshot's CPU: pickle and unpickle)")
        print(_table(["schedule", "pr_auc", "roc_auc", "precision", "recall", "stale_p50", "stale_max",
                      "snapshots", "MB", "ms"], lines), flush=True)

    if args.study in ("all", "order"):
        order = interleaved(len(rows), args.order_partitions, args.window)
        moved = int(np.abs(order - np.arange(len(rows))).max()) if len(rows) else 0
        r = run_partitions(Rows(rows.X[order], rows.y[order], rows.names), factory, 1, args.progress)
        figures["pr_auc_order"], figures["roc_auc_order"] = round(r["pr_auc"], 4), round(r["roc_auc"], 4)
        print(f"\none learner, rows in the order of {args.order_partitions} partitions taken one after the other "
              f"within {args.window} rows (a row moves at most {moved} places)")
        print(_table(["pr_auc", "roc_auc", "precision", "recall"],
                     [[r["pr_auc"], r["roc_auc"], r["precision"], r["recall"]]]), flush=True)

    if args.study in ("all", "local"):
        modes = [m.strip() for m in args.local_modes.split(",") if m.strip()]
        r = run_local(rows, factory, args.local_partitions, args.local_every, modes, args.progress)
        lines = []
        for m in r["modes"]:
            lines.append([m["mode"], m["pr_auc"], m["roc_auc"], m["precision"], m["recall"], m["local_learn_ms"]])
            figures[f"pr_auc_local_{m['mode']}"] = round(m["pr_auc"], 4)
            figures[f"roc_auc_local_{m['mode']}"] = round(m["roc_auc"], 4)
            figures[f"local_learn_ms_{m['mode']}"] = round(m["local_learn_ms"], 4)
        print(f"\nscorers learning between snapshots ({args.local_partitions} partitions, a snapshot every "
              f"{args.local_every} rows; a scorer's CPU ms per row spent learning)")
        print(_table(["replica learns", "pr_auc", "roc_auc", "precision", "recall", "learn_ms"], lines), flush=True)

    if args.study in ("all", "sampling"):
        lines = []
        for rate in _floats(args.sample):
            r = run_sampling(rows, factory, rate, args.progress)
            lines.append([_f(rate, 2), r["pr_auc"], r["roc_auc"], r["raw_precision"], r["raw_recall"], r["precision"],
                          r["recall"], _f(r["mean_p_raw"], 5), _f(r["mean_p"], 5), r["kept"], r["learner_ms"],
                          round(r["learner_max_eps"])])
            key = f"r{rate:g}"
            figures[f"pr_auc_{key}"], figures[f"roc_auc_{key}"] = round(r["pr_auc"], 4), round(r["roc_auc"], 4)
            figures[f"learner_ms_{key}"] = round(r["learner_ms"], 4)
            figures[f"precision_{key}"], figures[f"recall_{key}"] = round(r["precision"], 4), round(r["recall"], 4)
        print(f"\nnegative subsampling: every fraud, a share r of the genuine examples learned (fraud rate "
              f"{rows.y.mean():.5f}; precision/recall at {THRESHOLD}, raw then corrected; learner CPU ms per "
              "stream event when fed only the kept examples)")
        print(_table(["r", "pr_auc", "roc_auc", "raw_prec", "raw_rec", "precision", "recall", "mean_p_raw", "mean_p",
                      "kept", "learner_ms", "learner_eps"], lines), flush=True)

    figures["elapsed_s"] = round(time.perf_counter() - started)
    print(" ".join(f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
