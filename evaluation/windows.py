"""What window features are worth: a plain prequential loop over the Handbook's simulator, and
the Handbook's metrics, Card Precision@100 included.

:func:`prequential` runs a River model test-then-train, without Kafka or Faust, on what a service
fed by the replay receives: the transactions in event-time order and each one's label
``label_delay`` later (default 7 days, the Handbook's feedback delay), in one merged order
(:func:`app.features.merged`). A transaction is scored on its features at that moment (with
``features``, the window features of :class:`~app.features.TransactionFeatures`; without, the raw
input only) and learned, with those same features, when its label comes; a received label also
feeds its terminal's windows. The scores are those of a service whose model sees the same events in
the same order.

:func:`evaluate` scores them as the Handbook does (chapter 3 for the features, chapters
4-5 for the metrics):

* over each **test week** (by default the four from 2018-08-08 to 2018-09-04 when the stream covers
  them, else its last four whole weeks) exact ROC-AUC, average precision (AP) and
  :func:`card_precision_at_k` (k = 100), leaving out the transactions of cards *known compromised*,
  then the mean of the weeks. Two rules for "known" (``known`` of :func:`evaluate`):

  - ``"week"`` (default): a fraud label of the card received before the week starts, from the
    whole stream. Over months of history most cards of the simulator have had a fraud
    (every amount above 220 is one), so this leaves out most transactions;
  - ``"handbook"``: what the Handbook's ``get_train_test_set`` does for a model trained on the week
    that ends ``label_delay`` before the test week: a card is known on a test day when a fraud of
    it from that training week on has its label received before the day (so the set grows day by
    day, and frauds older than the training week are not known). The Handbook's anchors were
    measured this way.
* over the **whole stream**: ROC-AUC and AP of every scored transaction, and CP@100 over every day.

Card Precision@k, per day (:func:`card_precision_at_k`): each card is scored by its highest
probability that day, the ``k`` highest cards are "investigated", and the day's value is the share
of them with a fraud that day (over ``k``, as the Handbook divides). As the Handbook's
``card_precision_top_k``, a card investigated and found with a fraud on an earlier day of the span
is removed from the later days; the span's value is the mean of its days.

>>> day = [0, 0, 0, 1, 1, 1]
>>> card = ["a", "b", "c", "a", "b", "c"]
>>> y = [1, 0, 0, 1, 1, 0]
>>> p = [0.9, 0.2, 0.1, 0.9, 0.5, 0.4]
>>> card_precision_at_k(day, card, y, p, k=1)   # day 0: a (fraud); day 1: a is removed, b (fraud)
(1.0, [1.0, 1.0])
>>> card_precision_at_k(day, card, y, p, k=2)   # day 0: a, b -> 1/2; day 1: b, c -> 1/2
(0.5, [0.5, 0.5])
"""
from __future__ import annotations

import collections
import datetime as dt
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from app.features import StreamFeatures, TransactionFeatures, merged
from app.learning.evaluation import exact_metrics

DAY_S = 86_400
WEEK_S = 7 * DAY_S
#: The Handbook's default feedback delay: a label comes this long after its transaction.
LABEL_DELAY_S = 7 * DAY_S
#: The Handbook's four test weeks (its chapter 5: tested on the weeks 2018-08-08 to 2018-09-04).
HANDBOOK_TEST_START = "2018-08-08"
HANDBOOK_TEST_WEEKS = 4


@dataclass
class Scores:
    """One probability per transaction, in event-time order, with what the metrics need."""

    event_time: np.ndarray  # float64 epoch seconds
    card: np.ndarray  # object: card ids (None without one)
    y: np.ndarray  # int8
    p: np.ndarray  # float64: the probability before learning the transaction
    seconds: float = 0.0  # wall time of the loop (features, predictions, learning)
    cpu_seconds: float = 0.0
    stats: dict = field(default_factory=dict)

    @property
    def eps(self) -> float:
        """Transactions per second of the loop (wall)."""
        return len(self.p) / self.seconds if self.seconds > 0 else math.nan


def replayed(rows: Iterable[Mapping], label_delay: float, label_field: str = "Class"):
    """``("transaction", row)`` and ``("label", row)`` in the order :mod:`app.replay` sends them with
    labels ``label_delay`` of event time late: each label right *after* the first transaction at
    least ``label_delay`` later than its own (where :func:`app.features.merged` puts it before that
    transaction); the labels still due when the rows end, last.

    >>> rows = [{"event_time": 0.0, "Class": 0}, {"event_time": 5.0, "Class": 1}, {"event_time": 12.0, "Class": 0}]
    >>> [(kind, row["event_time"]) for kind, row in replayed(rows, label_delay=10)]
    [('transaction', 0.0), ('transaction', 5.0), ('transaction', 12.0), ('label', 0.0), ('label', 5.0), ('label', 12.0)]
    """
    due: collections.deque = collections.deque()
    for row in rows:
        yield "transaction", row
        if row.get(label_field) is not None:
            due.append(row)
        while due and row["event_time"] - due[0]["event_time"] >= label_delay:
            yield "label", due.popleft()
    while due:
        yield "label", due.popleft()


def prequential(rows: Iterable[Mapping], learner, features: TransactionFeatures | None = None, *,
                raw_names: tuple[str, ...] = ("Amount",), label_delay: float = LABEL_DELAY_S,
                negatives: float = 1.0, order: str = "merged", pending_ttl: float | None = None,
                progress: Callable[[int, float], None] | None = None,
                progress_every: int = 100_000) -> Scores:
    """Score then (``label_delay`` later) learn each of ``rows`` (dicts in event-time order with
    ``event_time``, ``card_id``, ``terminal_id``, ``Amount``, ``Class`` and the ``raw_names``
    fields) with ``learner`` (an :class:`~app.learning.OnlineLearner` or anything with
    ``predict_proba(x)`` and ``learn(x, y)``), on ``raw_names`` plus the window features of
    ``features`` (none when it is ``None``). ``negatives`` below 1 learns every fraud and only that
    share of the genuine transactions (negative subsampling, chosen by a hash of the transaction's
    position: :func:`evaluation.scaleout.keep_for_learning`); every transaction is still scored and
    its label still feeds its terminal's windows. ``progress(n, elapsed_s)`` is called every
    ``progress_every`` transactions.

    ``order="replay"`` takes the labels in the order the replay sends them to a service
    (:func:`replayed`: after the transaction that made them due) instead of
    :func:`app.features.merged`'s; ``pending_ttl`` then does what the scorer's ``PENDING_TTL_S``
    does: a label whose transaction is more than ``pending_ttl`` behind the newest transaction
    scored is dropped (not learned, not given to its terminal's windows; counted in
    ``stats["expired"]``). In the merged order no label is ever that late for a TTL of at least the
    delay.

    >>> from app.data.simulator import SimulatorConfig, simulate
    >>> from app.learning import OnlineLearner, build_model
    >>> import functools
    >>> rows = list(simulate(SimulatorConfig(n_customers=20, n_terminals=40, n_days=5), seed=1).rows())
    >>> s = prequential(rows, OnlineLearner(functools.partial(build_model, kind="lr")), TransactionFeatures())
    >>> len(s.p) == len(rows), s.stats["learned"] == sum(1 for r in rows if r["Class"] is not None)
    (True, True)
    >>> s = prequential(rows, OnlineLearner(functools.partial(build_model, kind="lr")), negatives=0.0)
    >>> s.stats["learned"] == sum(1 for r in rows if r["Class"] == 1)
    True
    >>> lr = functools.partial(build_model, kind="lr")
    >>> s = prequential(rows, OnlineLearner(lr), label_delay=DAY_S, order="replay", pending_ttl=DAY_S)
    >>> s.stats["expired"] > s.stats["learned"]  # only the labels sent after the last transaction are learned
    True
    >>> prequential(rows, OnlineLearner(lr), label_delay=DAY_S, order="replay", pending_ttl=2 * DAY_S).stats["expired"]
    0
    """
    from evaluation.scaleout import keep_for_learning

    if order not in ("merged", "replay"):
        raise ValueError(f"order must be 'merged' or 'replay', got {order!r}")
    events = merged(rows, label_delay) if order == "merged" else replayed(rows, label_delay)
    driver = StreamFeatures(features, raw_names) if features is not None else None
    times, cards, ys, ps = [], [], [], []
    pending: dict[int, dict] = {}
    learned = expired = 0
    newest = -math.inf
    started, cpu_started = time.perf_counter(), time.process_time()
    for kind, row in events:
        if kind == "transaction":
            newest = max(newest, row["event_time"])
            if driver is not None:
                x = driver.transaction(row)
            else:
                x = {name: row[name] for name in raw_names if row.get(name) is not None}
            i = len(ps)
            ps.append(learner.predict_proba(x))
            times.append(row["event_time"])
            cards.append(row.get("card_id"))
            ys.append(-1 if row.get("Class") is None else int(row["Class"]))
            if row.get("Class") is not None:
                pending[id(row)] = (i, x)  # the row stays alive until its label comes: its id is unique meanwhile
            if progress is not None and (i + 1) % progress_every == 0:
                progress(i + 1, time.perf_counter() - started)
        else:
            i, x = pending.pop(id(row))
            if pending_ttl is not None and row["event_time"] < newest - pending_ttl:
                expired += 1
                continue
            if negatives >= 1.0 or keep_for_learning(f"tx-{i}", int(row["Class"]), negatives):
                learner.learn(x, int(row["Class"]))
                learned += 1
            if driver is not None:
                driver.label(row.get("terminal_id"), row["event_time"], row["Class"])
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    stats = {"learned": learned, "expired": expired}
    if driver is not None:
        stats.update(without_card=driver.without_card, without_terminal=driver.without_terminal,
                     cards=len(driver.cards), terminals=len(driver.terminals))
        stats["driver"] = driver
    return Scores(np.asarray(times, dtype=np.float64), np.asarray(cards, dtype=object),
                  np.asarray(ys, dtype=np.int8), np.asarray(ps, dtype=np.float64), seconds, cpu, stats)


def card_precision_at_k(day, card, y, p, k: int = 100, remove_detected: bool = True) -> tuple[float, list[float]]:
    """``(mean, per_day)`` Card Precision@k of transactions with ``day``, ``card``, label ``y`` and
    probability ``p`` (see the module doc); days in ascending order, ``nan`` when there are none."""
    day, y, p = np.asarray(day), np.asarray(y), np.asarray(p, dtype=np.float64)
    codes = np.unique(np.asarray(card, dtype=object).astype(str), return_inverse=True)[1]
    detected = np.zeros(codes.max() + 1 if len(codes) else 0, dtype=bool)
    per_day = []
    for d in np.unique(day):
        sel = (day == d) & ~detected[codes]
        c, yy, pp = codes[sel], y[sel], p[sel]
        best = np.full(len(detected), -np.inf)
        np.maximum.at(best, c, pp)
        fraud = np.zeros(len(detected), dtype=bool)
        fraud[c[yy == 1]] = True
        present = np.unique(c)
        # highest probability first; ties by card (a stable order, whatever the rows' order)
        order = present[np.lexsort((present, -best[present]))][:k]
        found = order[fraud[order]]
        per_day.append(len(found) / k)
        if remove_detected:
            detected[found] = True
    return (float(np.mean(per_day)) if per_day else math.nan), per_day


def fraud_times(card, y, event_time) -> dict:
    """Each card's fraud event times, ascending."""
    out: dict = {}
    for c, label, t in zip(card, y, event_time):
        if label == 1 and c is not None:
            out.setdefault(c, []).append(float(t))
    for times in out.values():
        times.sort()
    return out


def known_compromised(card, event_time, frauds: dict, start: float, label_delay: float, rule: str) -> np.ndarray:
    """Which transactions of a test week starting at ``start`` belong to a card known compromised
    (see the module doc for the ``rule``); ``frauds`` from :func:`fraud_times`.

    >>> frauds = {"a": [0.0], "b": [10.0 * DAY_S]}
    >>> t = np.array([14.0, 16.5, 18.5]) * DAY_S
    >>> known_compromised(np.array(["a", "b", "b"]), t, frauds, 14 * DAY_S, 7 * DAY_S, "week").tolist()
    [True, False, False]
    >>> known_compromised(np.array(["a", "b", "b"]), t, frauds, 14 * DAY_S, 7 * DAY_S, "handbook").tolist()
    [True, False, True]
    """
    from bisect import bisect_left

    if rule not in ("week", "handbook"):
        raise ValueError(f"known must be 'week' or 'handbook', got {rule!r}")
    out = np.zeros(len(card), dtype=bool)
    since = start - label_delay - WEEK_S if rule == "handbook" else -math.inf
    for i, (c, t) in enumerate(zip(card, event_time)):
        times = frauds.get(c)
        if not times:
            continue
        # received before the week (week) or before the transaction's day (handbook)
        until = (start if rule == "week" else math.floor(t / DAY_S) * DAY_S) - label_delay
        j = bisect_left(times, since)
        out[i] = j < len(times) and times[j] < until
    return out


def weeks_of_test(first_time: float, last_time: float, start: str = HANDBOOK_TEST_START,
               weeks: int = HANDBOOK_TEST_WEEKS) -> list[tuple[float, float]]:
    """``[start, end)`` of the test weeks: ``weeks`` weeks from ``start`` (midnight UTC) when the
    stream ``[first_time, last_time]`` covers them, else its last ``weeks`` whole weeks (ending at
    the midnight after ``last_time``).

    >>> t0 = dt.datetime(2018, 4, 1, tzinfo=dt.timezone.utc).timestamp()
    >>> [dt.datetime.fromtimestamp(a, dt.timezone.utc).date().isoformat() for a, _ in weeks_of_test(t0, t0 + 182.5 * DAY_S)]
    ['2018-08-08', '2018-08-15', '2018-08-22', '2018-08-29']
    >>> [dt.datetime.fromtimestamp(a, dt.timezone.utc).date().isoformat() for a, _ in weeks_of_test(t0, t0 + 59.5 * DAY_S)]
    ['2018-05-03', '2018-05-10', '2018-05-17', '2018-05-24']
    """
    d = dt.date.fromisoformat(start)
    begin = dt.datetime(d.year, d.month, d.day, tzinfo=dt.timezone.utc).timestamp()
    if not (first_time <= begin and begin + weeks * WEEK_S <= math.floor(last_time / DAY_S + 1) * DAY_S):
        begin = math.floor(last_time / DAY_S + 1) * DAY_S - weeks * WEEK_S
    return [(begin + w * WEEK_S, begin + (w + 1) * WEEK_S) for w in range(weeks)]


def _metrics(y, p, day, card, k: int) -> dict[str, float]:
    m = exact_metrics(y, p, 0.5)
    cp, _ = card_precision_at_k(day, card, y, p, k)
    return {"roc_auc": m["roc_auc"], "ap": m["pr_auc"], f"cp{k}": cp, "transactions": int(len(y)),
            "frauds": int(np.sum(y == 1))}


def evaluate(scores: Scores, label_delay: float = LABEL_DELAY_S, k: int = 100,
             weeks: list[tuple[float, float]] | None = None, known: str = "week") -> dict:
    """The metrics of ``scores`` (see the module doc): ``{"weeks": [per week], "test": mean of the
    weeks, "stream": whole stream}``; each with ``roc_auc``, ``ap``, ``cp<k>``, ``transactions``,
    ``frauds`` (only labelled transactions count); ``known``: which cards a week leaves out."""
    labelled = scores.y >= 0
    t, card, y, p = scores.event_time[labelled], scores.card[labelled], scores.y[labelled], scores.p[labelled]
    day = np.floor(t / DAY_S).astype(np.int64)
    if weeks is None:
        weeks = weeks_of_test(float(t.min()), float(t.max()))
    frauds = fraud_times(card, y, t)
    per_week = []
    for start, end in weeks:
        inside = np.flatnonzero((t >= start) & (t < end))
        left_out = known_compromised(card[inside], t[inside], frauds, start, label_delay, known)
        sel = inside[~left_out]
        m = _metrics(y[sel], p[sel], day[sel], card[sel], k)
        m.update(start=start, left_out=int(left_out.sum()))
        per_week.append(m)
    test = {name: float(np.mean([w[name] for w in per_week])) for name in ("roc_auc", "ap", f"cp{k}")}
    test.update(transactions=sum(w["transactions"] for w in per_week), frauds=sum(w["frauds"] for w in per_week))
    return {"weeks": per_week, "test": test, "stream": _metrics(y, p, day, card, k)}


class MemberRecorder:
    """A learner (``predict_proba``, ``learn``) that keeps, for each prediction, what every member of
    its :class:`~app.learning.blend.ProbabilityBlend` said (``last_member_probabilities``). The
    members learn independently of their shares, so one loop gives the scores of every weighting
    (:func:`blended`).

    >>> from app.learning import OnlineLearner, build_model
    >>> import functools
    >>> recorder = MemberRecorder(OnlineLearner(functools.partial(build_model, kind="arf+lr", trees=2)))
    >>> p = recorder.predict_proba({"Amount": 1.0}); recorder.learn({"Amount": 1.0}, 0)
    >>> recorder.names, recorder.members.shape
    (['arf', 'lr', 'lr_pos10'], (1, 3))
    """

    def __init__(self, learner) -> None:
        from app.learning.explain import member_names

        self.learner, self.rows = learner, []
        self.names = member_names(learner.model)

    def predict_proba(self, x: dict) -> float:
        p = self.learner.predict_proba(x)
        self.rows.append(list(self.learner.model.last_member_probabilities))
        return p

    def learn(self, x: dict, y: int) -> None:
        self.learner.learn(x, y)

    @property
    def members(self) -> np.ndarray:
        """One row per prediction, one column per member."""
        return np.asarray(self.rows, dtype=np.float64).reshape(len(self.rows), len(self.names))


def blended(members: np.ndarray, first_share: float) -> np.ndarray:
    """The blend's probabilities with ``first_share`` for the first member (the forest in
    :func:`app.learning.build_model`'s blends) and the rest split equally between the others.

    >>> blended(np.array([[1.0, 0.0, 0.5]]), 0.5)
    array([0.625])
    """
    rest = (1.0 - first_share) / (members.shape[1] - 1)
    return first_share * members[:, 0] + rest * members[:, 1:].sum(axis=1)


def weeks_before(weeks: list[tuple[float, float]], n: int = HANDBOOK_TEST_WEEKS) -> list[tuple[float, float]]:
    """The ``n`` weeks just before ``weeks`` (a validation span: choose there, report on ``weeks``).

    >>> weeks_before([(10 * WEEK_S, 11 * WEEK_S)], 2) == [(8 * WEEK_S, 9 * WEEK_S), (9 * WEEK_S, 10 * WEEK_S)]
    True
    """
    start = weeks[0][0]
    return [(start - (n - w) * WEEK_S, start - (n - w - 1) * WEEK_S) for w in range(n)]


def week_label(start: float) -> str:
    """The date of a week's first day."""
    return dt.datetime.fromtimestamp(start, dt.timezone.utc).date().isoformat()
