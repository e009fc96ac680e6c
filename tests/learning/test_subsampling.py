import math
import random

import pytest

from app.learning.subsampling import check_rate, correct, keep
from evaluation import scaleout


def ids(n: int) -> list[str]:
    return [f"tx-{i:09d}" for i in range(n)]


def test_every_fraud_is_kept_at_any_rate():
    assert all(keep(tid, 1, rate) for tid in ids(200) for rate in (0.001, 0.1, 0.5))


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.5])
def test_the_share_of_genuine_examples_kept_is_the_rate(rate):
    n = 40_000
    kept = sum(keep(tid, 0, rate) for tid in ids(n))
    assert abs(kept / n - rate) < 4 * math.sqrt(rate * (1 - rate) / n)


def test_the_choice_depends_on_the_id_only():
    chosen = [keep(tid, 0, 0.1) for tid in ids(1000)]
    shuffled = ids(1000)
    random.Random(3).shuffle(shuffled)
    again = {tid: keep(tid, 0, 0.1) for tid in shuffled}
    assert chosen == [again[tid] for tid in ids(1000)]


def test_a_lower_rate_keeps_a_subset():
    low = {tid for tid in ids(5000) if keep(tid, 0, 0.1)}
    high = {tid for tid in ids(5000) if keep(tid, 0, 0.3)}
    assert low < high


def test_the_same_choice_as_the_study():
    for rate in (0.1, 0.5):
        assert [keep(tid, 0, rate) for tid in ids(3000)] == [scaleout.keep_for_learning(tid, 0, rate) for tid in ids(3000)]
    assert [correct(p, 0.1) for p in (0.0, 0.01, 0.5, 0.99, 1.0)] == \
        [scaleout.corrected(p, 0.1) for p in (0.0, 0.01, 0.5, 0.99, 1.0)]


def test_correction_restores_the_odds():
    # a model that saw frauds 1/r times as often: odds multiplied by 1/r; corrected odds are divided back
    for p, rate in [(0.5, 0.1), (0.2, 0.25), (0.9, 0.5)]:
        q = correct(p, rate)
        assert q / (1 - q) == pytest.approx(rate * p / (1 - p))


def test_correction_keeps_the_ranking():
    ps = sorted(random.Random(1).random() for _ in range(500))
    corrected = [correct(p, 0.1) for p in ps]
    assert corrected == sorted(corrected)
    assert all(q <= p for p, q in zip(ps, corrected))


@pytest.mark.parametrize("rate", [0.0, -0.1, 1.5, float("nan")])
def test_rates_outside_zero_one_are_refused(rate):
    with pytest.raises(ValueError):
        check_rate(rate)
