"""The records on the wire: one dataclasses-avroschema model per topic value.

The ``.avsc`` files in ``schemas/`` are generated from these models (``python -m app.records``)
and a test fails when the two drift apart.
"""
from app.records.base import Record
from app.records.transaction import FEATURE_NAMES, Transaction
from app.records.label import Label
from app.records.score import Score
from app.records.anomaly import Anomaly
from app.records.drift_alert import DriftAlert
from app.records.dead_letter import DeadLetter

ALL_RECORDS = (Transaction, Label, Score, Anomaly, DriftAlert, DeadLetter)

__all__ = [
    "ALL_RECORDS", "FEATURE_NAMES", "Record", "Transaction", "Label", "Score", "Anomaly",
    "DriftAlert", "DeadLetter",
]
