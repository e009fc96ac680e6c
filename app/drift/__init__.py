"""Drift monitoring: ADWIN over value streams (the score and error streams once their model has
settled) and mitigation policies.

Pure code (no Faust, no Kafka): :mod:`app.agents.drift` wires it to the topics.

* :mod:`app.drift.monitor` — :class:`DriftMonitor` (one ``river.drift.ADWIN`` per stream) and
  :class:`Detection`.
* :mod:`app.drift.transforms` — what a value goes through first (``log1p_abs``: log-magnitude).
* :mod:`app.drift.detectors` — the monitors the service runs and the values it feeds them.
* :mod:`app.drift.describe` — what a detection says in words (an alert's ``description``).
* :mod:`app.drift.mitigation` — none / reset / challenger, and when each fits.

Their evaluation on streams with known change points lives outside the package, in
:mod:`evaluation.drift` (``python -m evaluation.drift``).
"""
from app.drift.mitigation import MITIGATIONS, ChallengerSlot, Outcome, fresh_copy, make_mitigation
from app.drift.monitor import Detection, DriftMonitor
from app.drift.transforms import make_transform

__all__ = ["ChallengerSlot", "Detection", "DriftMonitor", "MITIGATIONS", "Outcome", "fresh_copy", "make_mitigation", "make_transform"]
