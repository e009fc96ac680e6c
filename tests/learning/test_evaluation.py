"""The prequential evaluator: exact over the window, within its stated error bound cumulatively
(checked against scikit-learn), in memory that does not grow with the events."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from app.learning import PrequentialEvaluator
from app.learning.evaluation import ScoreHistogram


def fraud_pairs(n: int, fraud_rate: float, seed: int, overlap: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores shaped like a fraud model's: genuine scores crowd near 0, fraud ones
    spread higher (``overlap`` pulls them down into the genuine ones)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < fraud_rate).astype(np.int8)
    genuine = rng.beta(0.6, 60.0, n)
    fraud = rng.beta(2.0, 2.0 + 20.0 * overlap, n)
    return y, np.where(y == 1, fraud, genuine)


def feed(ev: PrequentialEvaluator, y, p) -> None:
    for label, score in zip(y.tolist(), p.tolist()):
        ev.update(label, score)


@pytest.mark.parametrize("fraud_rate, overlap, seed", [(0.0017, 1.0, 1), (0.0017, 3.0, 2), (0.02, 1.0, 3),
                                                         (0.5, 0.0, 4)])
def test_cumulative_aucs_are_within_their_stated_bound_of_scikit_learn(fraud_rate, overlap, seed):
    y, p = fraud_pairs(150_000, fraud_rate, seed, overlap)
    if fraud_rate == 0.5:  # plain uniform scores, both classes alike
        p = np.random.default_rng(seed).random(len(y))
    ev = PrequentialEvaluator(window=1000, threshold=0.1)
    feed(ev, y, p)
    cumulative = ev.report()["cumulative"]
    roc, ap = roc_auc_score(y, p), average_precision_score(y, p)
    assert abs(cumulative["roc_auc"] - roc) <= cumulative["roc_auc_error_bound"]
    assert abs(cumulative["pr_auc"] - ap) <= cumulative["pr_auc_error_bound"]
    # and the bounds are small: these are the figures an operator reads
    assert cumulative["roc_auc_error_bound"] < 2e-4
    assert cumulative["pr_auc_error_bound"] < 5e-3
    assert abs(cumulative["roc_auc"] - roc) < 1e-4 and abs(cumulative["pr_auc"] - ap) < 1e-3
    flagged = p >= 0.1
    assert cumulative["precision"] == int((flagged & (y == 1)).sum()) / int(flagged.sum())
    assert cumulative["recall"] == int((flagged & (y == 1)).sum()) / int(y.sum())
    assert (cumulative["count"], cumulative["positives"]) == (len(y), int(y.sum()))


def test_the_bound_holds_where_binning_changes_the_ranking():
    # scores packed into a few bins, fraud and genuine interleaved within them: the bound is what it covers
    rng = random.Random(7)
    ev = PrequentialEvaluator(window=10, bits=3, octaves=4)
    ys, ps = [], []
    for _ in range(20_000):
        y = int(rng.random() < 0.05)
        p = rng.uniform(0.2, 0.3) + 0.01 * y
        ev.update(y, p)
        ys.append(y)
        ps.append(p)
    cumulative = ev.report()["cumulative"]
    assert abs(cumulative["roc_auc"] - roc_auc_score(ys, ps)) <= cumulative["roc_auc_error_bound"]
    assert abs(cumulative["pr_auc"] - average_precision_score(ys, ps)) <= cumulative["pr_auc_error_bound"]
    assert cumulative["roc_auc_error_bound"] > 0.01  # coarse bins: a real, and stated, error


def test_window_metrics_are_exact_over_the_last_events_after_the_ring_wraps():
    y, p = fraud_pairs(25_321, 0.02, 5)
    ev = PrequentialEvaluator(window=1000, threshold=0.1)
    feed(ev, y, p)
    window = ev.report()["window"]
    wy, wp = y[-1000:], p[-1000:]
    assert window["count"] == 1000 and window["positives"] == int(wy.sum())
    assert window["roc_auc"] == roc_auc_score(wy, wp)
    assert math.isclose(window["pr_auc"], average_precision_score(wy, wp), rel_tol=0, abs_tol=1e-12)
    flagged = wp >= 0.1
    assert window["precision"] == int((flagged & (wy == 1)).sum()) / int(flagged.sum())


def test_memory_does_not_grow_with_the_events():
    ev = PrequentialEvaluator(window=100)
    sizes = (len(ev._y), len(ev._p), len(ev.histogram.counts[0]), len(ev.histogram.counts[1]))
    y, p = fraud_pairs(50_000, 0.01, 6)
    feed(ev, y, p)
    assert (len(ev._y), len(ev._p), len(ev.histogram.counts[0]), len(ev.histogram.counts[1])) == sizes
    snapshot = ev.snapshot()
    assert len(snapshot._p) == 100 and snapshot.histogram.bins == ev.histogram.bins
    assert ev.count == 50_000


def test_rare_positives_with_fine_grained_scores_are_not_lumped_together():
    # a 10-threshold approximation would lump these scores together; the exact value is 1.0
    ev = PrequentialEvaluator(window=10)
    for i in range(1000):
        ev.update(0, 0.001 + i * 1e-6)
    ev.update(1, 0.0021)
    cumulative = ev.report()["cumulative"]
    assert cumulative["roc_auc"] == 1.0 and cumulative["roc_auc_error_bound"] == 0.0


def test_bins_follow_the_order_of_the_scores_at_both_ends():
    h = ScoreHistogram()
    scores = [0.0, 1e-14, 1e-12, 1e-9, 0.001, 0.0011, 0.25, 0.5, 0.501, 0.999, 1 - 1e-9, 1 - 1e-12, 1 - 1e-14, 1.0]
    bins = [h.bin(p) for p in scores]
    assert bins == sorted(bins) and bins[0] == 0 and bins[-1] == h.bins - 1
    assert len(set(bins)) == len(bins) - 2  # only 0 and 1e-14, 1 - 1e-14 and 1 share a bin (beyond 2**-41)


def test_undefined_metrics_are_nan():
    ev = PrequentialEvaluator(window=10)
    ev.update(0, 0.1)
    report = ev.report()["cumulative"]
    assert math.isnan(report["roc_auc"]) and math.isnan(report["recall"]) and math.isnan(report["precision"])
    assert math.isnan(report["roc_auc_error_bound"])


def test_a_snapshot_reports_its_own_pairs_while_the_evaluator_goes_on():
    ev = PrequentialEvaluator(window=10)
    for i in range(100):
        ev.update(int(i % 10 == 0), (i % 7) / 7)
    old = ev.snapshot()
    ev.update(1, 0.0)
    ev.update(0, 1.0)
    ys = [int(i % 10 == 0) for i in range(100)]
    ps = [(i % 7) / 7 for i in range(100)]
    older, newer = old.report()["cumulative"], ev.report()["cumulative"]
    # seven distinct scores, each in a bin of its own: no error
    assert older["count"] == 100 and older["roc_auc"] == pytest.approx(roc_auc_score(ys, ps), abs=1e-12)
    assert newer["count"] == 102
    assert newer["roc_auc"] == pytest.approx(roc_auc_score(ys + [1, 0], ps + [0.0, 1.0]), abs=1e-12)
