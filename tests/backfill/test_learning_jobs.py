"""Batch scores equal the learner's own predictions; a warm-started learner beats a cold one on the
10,000 events after the warm-start point (prequential, exact PR-AUC)."""
from __future__ import annotations

import pytest

from app.backfill.scores import batch_scores, model_input_columns
from app.backfill.sources import read_files
from app.backfill.warm_start import warm_start
from app.data.synthetic import generate, write_csv
from app.learning import OnlineLearner, model_factory
from app.learning.evaluation import exact_metrics

WARM_ROWS, EVAL_ROWS = 20_000, 10_000


@pytest.fixture(scope="module")
def history(spark, tmp_path_factory):
    rows = generate(WARM_ROWS + EVAL_ROWS, seed=11, fraud_rate=0.01, velocity_fraud=True, n_cards=2000)
    path = tmp_path_factory.mktemp("history") / "history.csv"
    write_csv(rows, path)
    return rows, read_files(spark, path)


def prequential_pr_auc(learner, rows, columns) -> float:
    y, p = [], []
    for row in rows:
        x = {c: float(row[c]) for c in columns}
        p.append(learner.predict_proba(x))
        y.append(int(row["Class"]))
        learner.learn(x, y[-1])
    return exact_metrics(y, p, 0.5)["pr_auc"]


def test_warm_start_beats_cold_on_the_next_10000_events(history):
    rows, frame = history
    split = rows[WARM_ROWS]["Time"]
    factory = model_factory(kind="lr")
    learner, stats = warm_start(frame, learner=OnlineLearner(factory), window_features=False, until_event_time=split)
    assert stats.rows == sum(r["Time"] < split for r in rows)
    assert learner.events_learned == stats.rows and stats.last_event_time < split
    after = [r for r in rows if r["Time"] >= split][:EVAL_ROWS]
    assert len(after) == EVAL_ROWS and sum(r["Class"] for r in after) >= 30
    columns = model_input_columns()
    warm = prequential_pr_auc(OnlineLearner.from_checkpoint(learner.to_checkpoint()), after, columns)
    cold = prequential_pr_auc(OnlineLearner(factory), after, columns)
    assert warm > cold + 0.05, (warm, cold)


def test_batch_scores_are_the_checkpoint_predictions(history):
    rows, frame = history
    learner, _ = warm_start(frame.where("source_offset < 3000"), learner=OnlineLearner(model_factory(kind="lr")),
                            window_features=False)
    sample = frame.where("source_offset >= 3000 and source_offset < 3500")
    got = {r["transaction_id"]: r for r in batch_scores(sample, learner.to_checkpoint(), window_features=False,
                                                        threshold=0.3).collect()}
    assert len(got) == 500
    for i in range(3000, 3500):
        x = {c: float(rows[i][c]) for c in model_input_columns()}
        score = got[f"tx-{i:09d}"]
        assert score["fraud_probability"] == pytest.approx(learner.predict_proba(x), rel=1e-12)
        assert score["decision"] == (score["fraud_probability"] >= 0.3)
        assert score["label"] == rows[i]["Class"] and score["model_version"] == learner.version
        assert score["events_learned"] == 3000
