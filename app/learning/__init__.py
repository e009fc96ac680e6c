"""Online learning, free of any stream framework (Spark and tests reuse it as is).

* :func:`~app.learning.pipeline.build_model` - the River pipeline; :func:`~app.learning.pipeline.model_factory`
  a picklable factory of it.
* :class:`~app.learning.blend.ProbabilityBlend` - a weighted mean of classifiers' fraud probabilities.
* :class:`~app.learning.learner.OnlineLearner` - predict, learn, reset, checkpoint and restore one model.
* :mod:`~app.learning.layout` - checkpoints read back into objects laid out as new ones, whose
  attribute reads are faster than those of a pickled or unpickled object.
* :class:`~app.learning.evaluation.PrequentialEvaluator` - exact ROC-AUC / PR-AUC, precision and recall,
  cumulative and over a sliding window.
* :class:`~app.learning.learner_set.LearnerSet` - keyed learners driven by lists of operations.
* :mod:`~app.learning.model_host` - where a learner set runs: this process or a model process of its own.
* :class:`~app.learning.hosted_learner.HostedLearner` - the owner's view of a learner in a model host.
"""
from app.learning.blend import ProbabilityBlend
from app.learning.evaluation import PrequentialEvaluator
from app.learning.learner import CheckpointError, OnlineLearner
from app.learning.pipeline import MODEL_KINDS, build_model, model_factory

__all__ = [
    "MODEL_KINDS",
    "CheckpointError",
    "OnlineLearner",
    "PrequentialEvaluator",
    "ProbabilityBlend",
    "build_model",
    "model_factory",
]

