"""The prequential evaluator's metrics are exact: equal to scikit-learn's over every pair."""
from __future__ import annotations

import math
import random

from sklearn.metrics import average_precision_score, roc_auc_score

from app.learning import PrequentialEvaluator


def test_cumulative_and_window_metrics_equal_scikit_learn_over_the_same_pairs():
    rng = random.Random(3)
    pairs = [(int(rng.random() < 0.02), rng.random()) for _ in range(5000)]
    pairs = [(y, min(1.0, p + 0.3 * y)) for y, p in pairs]
    ev = PrequentialEvaluator(window=1000, threshold=0.6)
    for y, p in pairs:
        ev.update(y, p)
    report = ev.report()
    ys, ps = zip(*pairs)
    assert report["cumulative"]["roc_auc"] == roc_auc_score(ys, ps)
    assert report["cumulative"]["pr_auc"] == average_precision_score(ys, ps)
    wy, wp = zip(*pairs[-1000:])
    assert report["window"]["roc_auc"] == roc_auc_score(wy, wp)
    assert report["window"]["count"] == 1000
    flagged = [(y, p) for y, p in pairs if p >= 0.6]
    assert report["cumulative"]["precision"] == sum(y for y, _ in flagged) / len(flagged)
    assert report["cumulative"]["recall"] == sum(y for y, _ in flagged) / sum(ys)


def test_rare_positives_with_fine_grained_scores_are_not_binned():
    # a thresholded approximation would lump these scores together; the exact value is 1.0
    ev = PrequentialEvaluator(window=10)
    for i in range(1000):
        ev.update(0, 0.001 + i * 1e-6)
    ev.update(1, 0.0021)
    assert ev.report()["cumulative"]["roc_auc"] == 1.0


def test_undefined_metrics_are_nan():
    ev = PrequentialEvaluator(window=10)
    ev.update(0, 0.1)
    report = ev.report()["cumulative"]
    assert math.isnan(report["roc_auc"]) and math.isnan(report["recall"]) and math.isnan(report["precision"])


def test_reports_as_the_pairs_come_equal_scikit_learn_with_ties_and_snapshots():
    # the cumulative AUCs are merged in report by report; ties (rounded scores) form one threshold
    rng = random.Random(5)
    ev = PrequentialEvaluator(window=500, threshold=0.5)
    ys, ps = [], []
    for chunk in (1, 7, 300, 2000, 1, 4000):
        for _ in range(chunk):
            y = int(rng.random() < 0.03)
            p = round(min(1.0, rng.random() * 0.7 + 0.3 * y), rng.choice([2, 6]))
            ev.update(y, p)
            ys.append(y)
            ps.append(p)
        report = ev.snapshot().report() if chunk == 300 else ev.report()
        cumulative = report["cumulative"]
        if 0 < sum(ys) < len(ys):
            assert math.isclose(cumulative["roc_auc"], roc_auc_score(ys, ps), rel_tol=0, abs_tol=1e-12)
            assert math.isclose(cumulative["pr_auc"], average_precision_score(ys, ps), rel_tol=0, abs_tol=1e-12)
        else:
            assert math.isnan(cumulative["roc_auc"]) and math.isnan(cumulative["pr_auc"])
        assert cumulative["count"] == len(ys) and cumulative["positives"] == sum(ys)


def test_an_older_snapshot_reports_its_own_pairs_after_a_newer_report():
    ev = PrequentialEvaluator(window=10)
    for i in range(100):
        ev.update(int(i % 10 == 0), (i % 7) / 7)
    old = ev.snapshot()
    ev.update(1, 0.0)
    ev.update(0, 1.0)
    newer = ev.report()["cumulative"]
    older = old.report()["cumulative"]
    ys = [int(i % 10 == 0) for i in range(100)]
    ps = [(i % 7) / 7 for i in range(100)]
    assert older["count"] == 100 and older["roc_auc"] == roc_auc_score(ys, ps)
    assert newer["count"] == 102 and newer["roc_auc"] == roc_auc_score(ys + [1, 0], ps + [0.0, 1.0])
