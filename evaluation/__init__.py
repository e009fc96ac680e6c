"""Research harnesses that measure parts of the service offline, outside the production package.

* :mod:`evaluation.drift` — the drift monitor on streams with known change points: detection
  delays, false alarms, PR-AUC after the change with and without mitigation
  (``python -m evaluation.drift``).
* :mod:`evaluation.scaleout` — what scaling out costs the model: one model per partition, scorers
  predicting with a learner's snapshots, negative subsampling for learning; CPU per event of predict
  and of learn (``python -m evaluation.scaleout``).
"""
