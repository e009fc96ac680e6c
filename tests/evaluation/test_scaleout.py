import math

import numpy as np
import pytest
from aiokafka.partitioner import DefaultPartitioner

from app.data.synthetic import generate
from app.learning.pipeline import model_factory
from app.records.transaction import FEATURE_NAMES
from app.testing.baseline import plain_loop
from evaluation.scaleout import (Rows, SnapshotSchedule, Staleness, corrected, keep_for_learning, partition_of,
                                 run_partitions, run_sampling, run_staleness, run_versions, transaction_id)


def rows_of(dicts) -> Rows:
    X = np.array([[float(r[name]) for name in FEATURE_NAMES] for r in dicts])
    return Rows(X, np.array([int(r["Class"]) for r in dicts]), tuple(FEATURE_NAMES))


@pytest.fixture(scope="module")
def synthetic():
    dicts = generate(1500, seed=3, fraud_rate=0.03)
    return dicts, rows_of(dicts)


def test_ids_and_partitions_are_the_replay_producers():
    from app.replay import transaction_id as replay_id

    assert [transaction_id(i) for i in (0, 7, 123456)] == [replay_id("tx", i) for i in (0, 7, 123456)]
    for i in range(300):
        key = transaction_id(i)
        assert partition_of(key, 8) == DefaultPartitioner()(key.encode(), list(range(8)), [])
    shares = np.bincount([partition_of(transaction_id(i), 8) for i in range(8000)], minlength=8) / 8000
    assert shares.min() > 0.1 and shares.max() < 0.15


def test_corrected_undoes_the_odds_that_subsampling_multiplies():
    for rate in (0.5, 0.2, 0.1, 0.01):
        for fraud_rate in (0.0017, 0.05, 0.5):
            # a model that learned every fraud and `rate` of the genuine ones sees this fraud rate
            seen = fraud_rate / (fraud_rate + (1 - fraud_rate) * rate)
            assert corrected(seen, rate) == pytest.approx(fraud_rate, rel=1e-12)
    ps = np.linspace(0, 1, 101)
    assert np.all(np.diff([corrected(p, 0.1) for p in ps]) > 0)  # order kept: the AUCs do not move
    assert [corrected(p, 1.0) for p in ps] == list(ps)


def test_sampling_keeps_every_fraud_and_the_same_genuine_ones_whoever_asks():
    ids = [transaction_id(i) for i in range(20_000)]
    assert all(keep_for_learning(k, 1, 0.05) for k in ids[:500])
    for rate in (0.5, 0.2, 0.1):
        kept = [k for k in ids if keep_for_learning(k, 0, rate)]
        assert abs(len(kept) / len(ids) - rate) < 0.01
        assert kept == [k for k in ids if keep_for_learning(k, 0, rate)]  # a function of the id alone
    small = {k for k in ids if keep_for_learning(k, 0, 0.1)}
    assert small <= {k for k in ids if keep_for_learning(k, 0, 0.5)}  # a lower share keeps a subset


def test_snapshot_schedule_takes_whichever_bound_comes_first():
    s = SnapshotSchedule(every_events=100, every_ms=50.0)
    fast = [n for n in range(1, 1001) if s.due(n, now_ms=n * 0.1)]  # 10,000 ev/s: the count decides
    assert fast == list(range(100, 1001, 100))
    s = SnapshotSchedule(every_events=100, every_ms=50.0)
    slow = [n for n in range(1, 101) if s.due(n, now_ms=n * 10.0)]  # 100 ev/s: the clock decides
    assert slow == list(range(5, 101, 5))
    with pytest.raises(ValueError):
        SnapshotSchedule()
    with pytest.raises(ValueError):
        SnapshotSchedule(every_events=0)
    assert SnapshotSchedule.parse("20ms") == SnapshotSchedule(every_ms=20.0)


def test_staleness_quantiles_match_numpy_and_a_future_snapshot_is_refused():
    lags = np.random.default_rng(1).integers(0, 50, size=999)
    s = Staleness()
    for i, lag in enumerate(lags):
        s.record(1000 + i, 1000 + i - int(lag))
    for q in (0.0, 0.25, 0.5, 0.9, 1.0):
        assert s.quantile(q) == pytest.approx(np.quantile(lags, q))
    assert s.max == lags.max() and s.mean == pytest.approx(lags.mean())
    with pytest.raises(ValueError):
        s.record(5, 6)
    assert math.isnan(Staleness().median)


def test_one_partition_is_the_plain_loop(synthetic):
    dicts, rows = synthetic
    params = {"kind": "arf+lr", "trees": 2}
    ours = run_partitions(rows, model_factory(**params), 1)
    loop = plain_loop(dicts, params)
    assert np.array_equal(ours["p"], loop["p"])
    assert ours["predict_ms"] > 0 and ours["learn_ms"] > 0 and ours["trained_predict_ms"] > 0


def test_partitions_split_the_frauds(synthetic):
    _, rows = synthetic
    r = run_partitions(rows, model_factory(kind="lr"), 4)
    assert sum(r["frauds_per_model"]) == rows.y.sum() and len(r["frauds_per_model"]) == 4
    assert max(r["frauds_per_model"]) < rows.y.sum()


def test_snapshot_every_event_is_the_learner_and_staleness_is_bookkept(synthetic):
    _, rows = synthetic
    factory = model_factory(kind="arf+lr", trees=2)
    r = run_staleness(rows, factory, [SnapshotSchedule(every_events=1), SnapshotSchedule(every_events=100),
                                      SnapshotSchedule(every_ms=250.0)], rate=1000.0)
    every, hundred, quarter = r["schedules"]
    learner = run_partitions(rows, factory, 1)
    assert r["learner"]["pr_auc"] == learner["pr_auc"] and r["learner"]["roc_auc"] == learner["roc_auc"]
    assert every["pr_auc"] == learner["pr_auc"] and every["staleness_max"] == 0
    n = len(rows)
    assert hundred["snapshots"] == n // 100 and hundred["staleness_max"] == 99
    assert hundred["staleness_mean"] == pytest.approx(np.mean(np.arange(n) % 100))
    assert quarter["snapshots"] == n // 250 and quarter["staleness_max"] == 249  # 250 ms at 1000 ev/s
    assert hundred["snapshot_mb_last"] > 0


def test_sampling_at_rate_one_is_the_plain_loop_and_lower_rates_learn_less(synthetic):
    _, rows = synthetic
    factory = model_factory(kind="lr")
    full = run_sampling(rows, factory, 1.0)
    assert full["pr_auc"] == run_partitions(rows, factory, 1)["pr_auc"] and full["kept"] == len(rows)
    tenth = run_sampling(rows, factory, 0.1)
    frauds = int(rows.y.sum())
    assert frauds < tenth["kept"] < frauds + 0.15 * (len(rows) - frauds)
    assert tenth["mean_p"] < tenth["mean_p_raw"]  # the correction lowers every probability


def test_interleaving_keeps_each_partitions_order_within_windows():
    from evaluation.scaleout import interleaved

    n, partitions, window = 1000, 4, 64
    order = interleaved(n, partitions, window)
    assert sorted(order.tolist()) == list(range(n))
    owner = [partition_of(transaction_id(i), partitions) for i in order]
    for start in range(0, n, window):
        chunk = order[start:start + window]
        assert set(chunk.tolist()) == set(range(start, min(n, start + window)))  # no row leaves its window
        assert owner[start:start + window] == sorted(owner[start:start + window])  # partition after partition
    for k in range(partitions):
        mine = [i for i, o in zip(order.tolist(), owner) if o == k]
        assert mine == sorted(mine)
    assert interleaved(n, 1, window).tolist() == list(range(n))


def test_local_learning_none_is_the_snapshot_and_all_with_one_partition_is_the_loop(synthetic):
    from evaluation.scaleout import learns_locally, run_local

    _, rows = synthetic
    factory = model_factory(kind="arf+lr", trees=2)
    one = run_local(rows, factory, 1, 100, ["none", "all"])
    snap = run_staleness(rows, factory, [SnapshotSchedule(every_events=100)], rate=1000.0)["schedules"][0]
    none, everything = one["modes"]
    assert none["pr_auc"] == snap["pr_auc"] and none["roc_auc"] == snap["roc_auc"]
    assert none["local_learn_ms"] == 0
    loop = run_partitions(rows, factory, 1)
    assert everything["pr_auc"] == loop["pr_auc"] and everything["roc_auc"] == loop["roc_auc"]
    frauds = run_local(rows, factory, 4, 100, ["frauds"])["modes"][0]
    assert 0 < frauds["local_learn_ms"]
    with pytest.raises(ValueError):
        learns_locally("some", 1)


def test_a_sampled_learner_snapshotting_every_example_is_the_sampling_study(synthetic):
    _, rows = synthetic
    factory = model_factory(kind="lr")
    r = run_staleness(rows, factory, [SnapshotSchedule(every_events=1), SnapshotSchedule(every_events=50)],
                      rate=1000.0, sample_rate=0.2)
    sampled = run_sampling(rows, factory, 0.2)
    every, fifty = r["schedules"]
    for key in ("pr_auc", "roc_auc", "precision", "recall"):
        assert r["learner"][key] == sampled[key] == every[key] or math.isnan(sampled[key])
    assert fifty["snapshots"] == len(rows) // 50 and fifty["staleness_max"] == 49  # counts every example received


def test_a_replay_of_versions_that_lag_nothing_in_file_order_is_the_subsampled_loop(synthetic):
    """Row k predicted by the model that took in the k rows before it, in file order: what the
    learner of the plain loop predicts (at r = 1: before the first snapshot a replica's probability
    is not corrected, so row 0 differs from the subsampled loop's); a version that lags, or examples
    out of order, predict otherwise."""
    _, rows = synthetic
    factory = model_factory(kind="lr")
    n = len(rows)
    loop = run_sampling(rows, factory, 1.0)
    assert run_versions(rows, factory, 1.0, list(range(n)), np.arange(n))["pr_auc"] == loop["pr_auc"]
    fresh = run_versions(rows, factory, 0.5, list(range(n)), np.arange(n))
    stale = run_versions(rows, factory, 0.5, list(range(n)), np.maximum(np.arange(n) - 300, 0))
    assert stale["pr_auc"] != fresh["pr_auc"]
    shuffled = run_versions(rows, factory, 0.5, list(range(n))[::-1], np.arange(n))
    assert shuffled["pr_auc"] != fresh["pr_auc"]
