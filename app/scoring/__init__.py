"""Scoring: predict, score, then learn each transaction with its partition's online model.

* :class:`~app.scoring.partition.PartitionScorer` - one partition's learner handle, waiting
  transactions and prequential evaluator (plain per-key state).
* :class:`~app.scoring.scorer.Scorer` - every partition of a worker, their model host, their
  checkpoints and catch-up; what the scoring agents call.
"""
from app.scoring.partition import PartitionScorer
from app.scoring.scorer import Item, Scorer, ScoringFailed

__all__ = ["Item", "PartitionScorer", "Scorer", "ScoringFailed"]
