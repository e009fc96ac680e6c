"""Unsupervised anomaly detection (Faust-free): Half-Space Trees and a threshold on their scores.

* :class:`AnomalyDetector` - ``MinMaxScaler | HalfSpaceTrees``, score then learn, flag above threshold.
* :class:`FixedThreshold`, :class:`RollingQuantileThreshold` - when a score flags.
"""
from app.anomaly.detector import AnomalyDetector, Verdict, make_model
from app.anomaly.threshold import FixedThreshold, RollingQuantileThreshold, make_threshold

__all__ = ["AnomalyDetector", "FixedThreshold", "RollingQuantileThreshold", "Verdict", "make_model", "make_threshold"]
