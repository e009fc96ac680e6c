"""Prequential (test-then-train) evaluation in bounded memory.

Each labelled event is scored *before* the model learns it; the evaluator is told the pair
(label, probability) and reports ``roc_auc``, ``pr_auc`` (average precision), and ``precision`` and
``recall`` at the decision ``threshold`` (``decision = p >= threshold``), over two spans:

* ``window``: the last ``window`` events, kept in a ring buffer (9 bytes each). Exact: the AUCs are
  scikit-learn's ``roc_auc_score`` and ``average_precision_score`` of those pairs (the tests compare).
* ``cumulative``: every event since the evaluator was made, in fixed memory (:class:`ScoreHistogram`:
  a count per class in each of ``2 + 2 * octaves * 2**bits`` score bins, 1.3 MB with the defaults,
  however many events). ``count``, ``positives``, ``precision`` and ``recall`` are exact (plain
  counters); the AUCs are computed from the bins, pairs within one bin counted as ties, and each
  comes with a bound on its error (``roc_auc_error_bound``, ``pr_auc_error_bound``: the exact
  value lies within it, see :meth:`ScoreHistogram.metrics`).

The bins are fine where fraud scores live: their width is relative to the distance to 0 or to 1
(``2**-bits`` of it, 0.1% with the defaults) down to ``2**-(octaves + 1)`` (5e-13), so the scores of a
model that gives most transactions 0.001 and a few 0.002 are never lumped together as a
10-threshold ROC-AUC would lump them: at 0.17% fraud those are badly wrong.

A metric that is undefined (no positive or no negative yet) is ``nan``. Updating costs a few
microseconds; :meth:`PrequentialEvaluator.report` a few tens of milliseconds (the bins and the
window's sort), whatever the count: call it every few seconds, on a
:meth:`~PrequentialEvaluator.snapshot` (a 1.4 MB copy) if another thread reports.

>>> ev = PrequentialEvaluator(window=4, threshold=0.5)
>>> for y, p in [(0, 0.1), (1, 0.8), (0, 0.3), (1, 0.4), (0, 0.2)]:
...     ev.update(y, p)
>>> r = ev.report()
>>> r["cumulative"]["roc_auc"], r["cumulative"]["recall"], r["cumulative"]["precision"], r["cumulative"]["count"]
(1.0, 0.5, 1.0, 5)
>>> r["cumulative"]["roc_auc_error_bound"]  # no bin holds both a fraud and a genuine score
0.0
>>> r["window"]["count"], round(r["window"]["pr_auc"], 3)
(4, 1.0)
"""
from __future__ import annotations

import math
from array import array

import numpy as np

METRICS = ("roc_auc", "pr_auc", "precision", "recall")


def exact_metrics(y, p, threshold: float) -> dict[str, float]:
    """Exact ROC-AUC, PR-AUC, precision and recall at ``threshold`` of labels ``y`` and scores ``p``
    (the AUCs as scikit-learn computes them: :func:`ranked_metrics`).

    >>> m = exact_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], threshold=0.5)
    >>> m["roc_auc"], m["precision"], m["recall"]
    (0.75, 0.5, 0.5)
    >>> math.isnan(exact_metrics([0, 0], [0.1, 0.2], 0.5)["roc_auc"])
    True
    """
    y = np.asarray(y, dtype=np.int8)
    p = np.asarray(p, dtype=np.float64)
    positives = int(y.sum(dtype=np.int64))
    out = {"count": int(len(y)), "positives": positives}
    if 0 < positives < len(y):
        order = np.argsort(p, kind="stable")[::-1]
        out["roc_auc"], out["pr_auc"] = ranked_metrics(p[order], y[order])
    else:
        out["roc_auc"] = out["pr_auc"] = math.nan
    flagged = p >= threshold
    tp = int((flagged & (y == 1)).sum())
    out["precision"] = tp / int(flagged.sum()) if flagged.any() else math.nan
    out["recall"] = tp / positives if positives else math.nan
    return out


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.trapezoid(y, x) if hasattr(np, "trapezoid") else np.trapz(y, x))


def ranked_metrics(p_desc: np.ndarray, y_desc: np.ndarray) -> tuple[float, float]:
    """Exact ROC-AUC and PR-AUC (average precision) of probabilities already sorted in decreasing
    order, with their labels; scikit-learn's ``roc_auc_score`` and ``average_precision_score``
    computed the same way (ties form one threshold), without their sort. Both classes must be there.

    >>> p = np.array([0.9, 0.6, 0.4, 0.1]); y = np.array([1, 0, 1, 0], dtype=np.int8)
    >>> ranked_metrics(p, y)
    (0.75, 0.8333333333333333)
    """
    distinct = np.flatnonzero(np.diff(p_desc))
    thresholds = np.r_[distinct, p_desc.size - 1]
    tps = np.cumsum(y_desc, dtype=np.float64)[thresholds]
    fps = 1.0 + thresholds - tps
    # ROC: scikit-learn first drops the collinear points, which leaves the area as it is
    if len(fps) > 2:
        corners = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        roc_fps, roc_tps = fps[corners], tps[corners]
    else:
        roc_fps, roc_tps = fps, tps
    roc_fps, roc_tps = np.r_[0.0, roc_fps], np.r_[0.0, roc_tps]
    roc_auc = _trapezoid(roc_tps / roc_tps[-1], roc_fps / roc_fps[-1])
    precision = np.r_[(tps / (tps + fps))[::-1], 1.0]
    recall = np.r_[(tps / tps[-1])[::-1], 0.0]
    pr_auc = float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))
    return roc_auc, pr_auc


class ScoreHistogram:
    """How many scores of each class fell in each of a fixed set of bins of [0, 1], and the AUCs
    read off them with a bound on their error.

    A score ``p`` goes by its distance to the nearer end, ``q = min(p, 1 - p)``: in octave ``o``
    (``2**-(o + 1) <= q < 2**-o``, ``o = 1 .. octaves``; ``q = 0.5`` in the top bin of octave 1),
    split into ``2**bits`` equal bins, so a bin is at most ``2**-bits`` of ``q`` wide (0.1% by
    default); every ``q < 2**-(octaves + 1)`` (0 and 1 included) shares one bin at its end. Bins are ordered as the scores are (``p < p'`` puts ``p``
    in the same bin or a lower one; ``1 - p`` is exact for ``p >= 0.5``), so pairs in different bins
    are ranked exactly; the AUCs count the pairs within a bin as ties, as scikit-learn counts equal
    scores.

    >>> h = ScoreHistogram(bits=4, octaves=12)
    >>> for y, p in [(0, 0.001), (0, 0.00112), (1, 0.0011), (0, 0.3), (1, 0.9)]:
    ...     h.add(y, p)
    >>> m = h.metrics()  # 0.0011 and 0.00112 share a bin (of width 2**-14): counted as a tie
    >>> m["roc_auc"], round(m["roc_auc_error_bound"], 4)  # the exact ROC-AUC is 0.6667
    (0.75, 0.0833)
    """

    def __init__(self, bits: int = 10, octaves: int = 40) -> None:
        self.bits, self.octaves = bits, octaves
        self._per_octave = 1 << bits
        self.bins = 2 + 2 * octaves * self._per_octave
        self.counts = (array("q", bytes(8 * self.bins)), array("q", bytes(8 * self.bins)))  # genuine, fraud

    def bin(self, p: float) -> int:
        """The bin of score ``p`` (0: the lowest scores, ``bins - 1``: the highest).

        >>> h = ScoreHistogram(bits=2, octaves=3)  # 26 bins; q < 2**-4 at the ends
        >>> [h.bin(p) for p in (0.0, 0.05, 0.07, 0.1, 0.2, 0.49, 0.5, 0.8, 0.9, 0.95, 1.0)]
        [0, 0, 1, 3, 7, 12, 13, 18, 22, 25, 25]
        """
        upper = p >= 0.5
        q = 1.0 - p if upper else p
        if not q >= 0.0:  # NaN or a score out of [0, 1]: the nearer end
            q = 0.0
        mantissa, exponent = math.frexp(q)  # q = mantissa * 2**exponent, 0.5 <= mantissa < 1
        octave = -exponent  # q in [2**-(octave + 1), 2**-octave)
        if octave > self.octaves or q == 0.0:
            return self.bins - 1 if upper else 0
        step = int((mantissa - 0.5) * 2 * self._per_octave)
        if octave < 1:  # q == 0.5: the top of octave 1
            octave, step = 1, self._per_octave - 1
        if upper:
            return 1 + self.octaves * self._per_octave + (octave - 1) * self._per_octave + (self._per_octave - 1 - step)
        return 1 + (self.octaves - octave) * self._per_octave + step

    def add(self, y: int, p: float) -> None:
        self.counts[1 if y else 0][self.bin(p)] += 1

    def copy(self) -> "ScoreHistogram":
        other = ScoreHistogram.__new__(ScoreHistogram)
        other.bits, other.octaves, other._per_octave, other.bins = self.bits, self.octaves, self._per_octave, self.bins
        other.counts = (array("q", self.counts[0]), array("q", self.counts[1]))
        return other

    def metrics(self) -> dict[str, float]:
        """``roc_auc`` and ``pr_auc`` from the bins, and the bound on the error of each.

        With ``n_b`` genuine and ``f_b`` fraud scores in bin ``b``, ``N`` and ``F`` in all:

        * ROC-AUC is the share of (fraud, genuine) pairs ranked right, ties counting half; only the
          pairs within a bin may be ranked otherwise than exactly, each by at most half, so
          ``|roc_auc - exact| <= sum_b f_b * n_b / (2 * F * N)``.
        * PR-AUC (average precision) gives each fraud score the precision at its threshold; within
          bin ``b``, with ``c_b`` scores and ``C_b`` scores in it and above it, that precision differs
          from the bin's by at most ``(c_b - 1) / C_b``, so
          ``|pr_auc - exact| <= sum_b f_b / F * (c_b - 1) / C_b``.

        Both bounds are 0 when every bin holds one class (or one distinct score), and small when the
        scores spread over many bins (the tests check them against scikit-learn on 10^5 pairs).
        """
        genuine = np.frombuffer(self.counts[0], dtype=np.int64).astype(np.float64)
        fraud = np.frombuffer(self.counts[1], dtype=np.int64).astype(np.float64)
        used = np.flatnonzero(genuine + fraud)
        n, f = genuine[used], fraud[used]
        total_n, total_f = n.sum(), f.sum()
        if total_n == 0 or total_f == 0:
            return {"roc_auc": math.nan, "pr_auc": math.nan,
                    "roc_auc_error_bound": math.nan, "pr_auc_error_bound": math.nan}
        below = np.cumsum(n) - n  # genuine scores in the bins under each
        roc_auc = float(np.sum(f * (below + 0.5 * n)) / (total_f * total_n))
        roc_bound = float(np.sum(f * n) / (2.0 * total_f * total_n))
        # from the top bin down: the thresholds of average precision
        f_desc, c_desc = f[::-1], (n + f)[::-1]
        tps, seen = np.cumsum(f_desc), np.cumsum(c_desc)
        pr_auc = float(np.sum(f_desc / total_f * (tps / seen)))
        pr_bound = float(np.sum(f_desc / total_f * (c_desc - 1.0) / seen))
        return {"roc_auc": min(1.0, roc_auc), "pr_auc": min(1.0, pr_auc),
                "roc_auc_error_bound": roc_bound, "pr_auc_error_bound": pr_bound}


class PrequentialEvaluator:
    """Prequential metrics, over the last ``window`` events (exact) and cumulative (binned, with
    error bounds: :class:`ScoreHistogram`, ``bits`` and ``octaves``), in memory that does not grow
    with the events (see the module's docstring)."""

    def __init__(self, window: int = 10_000, threshold: float = 0.5, *, bits: int = 10, octaves: int = 40) -> None:
        if window < 1:
            raise ValueError(f"the prequential window needs at least 1 event, got {window}")
        self.window = window
        self.threshold = threshold
        self._y = array("b", bytes(window))  # the last `window` pairs, a ring; the next goes at _count % window
        self._p = array("d", bytes(8 * window))
        self._count = 0
        self._positives = self._flagged = self._flagged_positives = 0
        self.histogram = ScoreHistogram(bits, octaves)

    def update(self, y: int, p: float) -> None:
        """Record the probability ``p`` the model gave before it learned the label ``y``."""
        y = 1 if y else 0
        at = self._count % self.window
        self._y[at], self._p[at] = y, p
        self._count += 1
        self._positives += y
        if p >= self.threshold:
            self._flagged += 1
            self._flagged_positives += y
        self.histogram.add(y, p)

    @property
    def count(self) -> int:
        return self._count

    def snapshot(self) -> "PrequentialEvaluator":
        """A copy, to report on in another thread while this one keeps updating (its size is the
        window's and the histogram's, whatever the count).

        >>> ev = PrequentialEvaluator(window=2); ev.update(1, 0.9)
        >>> copy = ev.snapshot(); ev.update(0, 0.1)
        >>> copy.count, ev.count
        (1, 2)
        """
        copy = PrequentialEvaluator.__new__(PrequentialEvaluator)
        copy.window, copy.threshold = self.window, self.threshold
        copy._y, copy._p = array("b", self._y), array("d", self._p)
        copy._count, copy._positives = self._count, self._positives
        copy._flagged, copy._flagged_positives = self._flagged, self._flagged_positives
        copy.histogram = self.histogram.copy()
        return copy

    def report(self) -> dict[str, dict[str, float]]:
        """``{"cumulative": {...}, "window": {...}}``, each with the :data:`METRICS`, count and
        positives; the cumulative one with the AUCs' error bounds as well."""
        kept = min(self._count, self.window)
        y, p = np.frombuffer(self._y, dtype=np.int8)[:kept], np.frombuffer(self._p)[:kept]
        cumulative = {"count": self._count, "positives": self._positives}
        cumulative.update(self.histogram.metrics())
        cumulative["precision"] = self._flagged_positives / self._flagged if self._flagged else math.nan
        cumulative["recall"] = self._flagged_positives / self._positives if self._positives else math.nan
        return {"cumulative": cumulative, "window": exact_metrics(y, p, self.threshold)}
