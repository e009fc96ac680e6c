"""A run's outputs as pandas frames, from Kafka topics or from Parquet.

Scores keep their own ``label`` when the transaction carried one; labels that came later on the
``labels`` topic are joined by transaction id.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

SCORE_COLUMNS = ["transaction_id", "event_time", "processing_time", "fraud_probability", "decision", "label",
                 "model_version", "partition", "offset"]
ANOMALY_COLUMNS = ["transaction_id", "event_time", "score", "threshold", "processing_time"]
DRIFT_COLUMNS = ["event_time", "stream", "detector", "position", "mean_before", "mean_after", "mitigation",
                 "model_version", "processing_time"]
LABEL_COLUMNS = ["transaction_id", "label"]


def _frame(records: list[dict], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    for column in columns:
        if column not in frame:
            frame[column] = pd.Series(dtype="float64")
    return frame


@dataclass
class RunFrames:
    """Scores (required), labels, anomalies and drift alerts of one run.

    >>> run = RunFrames.from_records(
    ...     scores=[{"transaction_id": "a", "event_time": 1.0, "processing_time": 1.5, "fraud_probability": 0.9,
    ...              "decision": True, "label": None}],
    ...     labels=[{"transaction_id": "a", "label": 1}])
    >>> run.labelled()[["transaction_id", "label"]].values.tolist()
    [['a', 1]]
    """

    scores: pd.DataFrame
    labels: pd.DataFrame = field(default_factory=lambda: _frame([], LABEL_COLUMNS))
    anomalies: pd.DataFrame = field(default_factory=lambda: _frame([], ANOMALY_COLUMNS))
    drift_alerts: pd.DataFrame = field(default_factory=lambda: _frame([], DRIFT_COLUMNS))

    @classmethod
    def from_records(cls, scores: list[dict], labels: list[dict] = (), anomalies: list[dict] = (),
                     drift_alerts: list[dict] = ()) -> "RunFrames":
        return cls(_frame(list(scores), SCORE_COLUMNS), _frame(list(labels), LABEL_COLUMNS),
                   _frame(list(anomalies), ANOMALY_COLUMNS), _frame(list(drift_alerts), DRIFT_COLUMNS))

    def with_labels(self) -> pd.DataFrame:
        """Scores in event-time order, with ``label`` filled from the labels frame where missing.

        A transaction scored twice (at-least-once delivery) counts once: the first score is kept.
        """
        scores = self.scores.drop_duplicates("transaction_id", keep="first").copy()
        if len(self.labels):
            late = self.labels.drop_duplicates("transaction_id", keep="last").set_index("transaction_id")["label"]
            scores["label"] = scores["label"].astype("float64").fillna(scores["transaction_id"].map(late))
        return scores.sort_values(["event_time", "transaction_id"], kind="stable").reset_index(drop=True)

    def labelled(self) -> pd.DataFrame:
        """The scores whose label is known, in event-time order."""
        scores = self.with_labels()
        scored = scores[scores["label"].notna()].copy()
        scored["label"] = scored["label"].astype(int)
        return scored.reset_index(drop=True)


def from_parquet(path: str | Path) -> RunFrames:
    """Read ``scores``, and if present ``labels``, ``anomalies``, ``drift_alerts`` (a ``.parquet`` file
    or a folder of part files each) under ``path``."""
    root = Path(path)

    def read(name: str, columns: list[str], required: bool = False) -> pd.DataFrame:
        for candidate in (root / f"{name}.parquet", root / name, root / name.replace("_", "-")):
            if candidate.exists():
                return _frame(pd.read_parquet(candidate).to_dict("records"), columns)
        if required:
            raise FileNotFoundError(f"no {name}.parquet or {name}/ under {root}")
        return _frame([], columns)

    return RunFrames(read("scores", SCORE_COLUMNS, required=True), read("labels", LABEL_COLUMNS),
                     read("anomalies", ANOMALY_COLUMNS), read("drift_alerts", DRIFT_COLUMNS))


def from_topics(broker: str, registry_url: str, scores_topic: str, labels_topic: str | None = None,
                anomalies_topic: str | None = None, drift_alerts_topic: str | None = None,
                timeout_s: float = 120.0, idle_s: float = 3.0) -> RunFrames:
    """Read the topics from the beginning to their current end, decoding through the registry."""
    from app.admin import read_topic
    from app.records import Anomaly, DriftAlert, Label, Score
    from app.serialization import ConfluentAvroCodec, make_registry_client

    client = make_registry_client(registry_url)

    def read(topic: str | None, record: type) -> list[dict]:
        if not topic:
            return []
        codec = ConfluentAvroCodec(client, topic, record.avro_schema_to_python())
        rows = asyncio.run(read_topic(broker, topic, codec.loads, timeout_s=timeout_s, idle_s=idle_s))
        return [value for _, value, _, _ in rows]

    return RunFrames.from_records(read(scores_topic, Score), read(labels_topic, Label),
                                  read(anomalies_topic, Anomaly), read(drift_alerts_topic, DriftAlert))
