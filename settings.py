"""Every tunable of the service, in one place.

Each value can be overridden from the environment with the ``FRAUD_`` prefix and the setting's
name in upper case, for example ``FRAUD_KAFKA_BROKER=kafka:9092`` or ``FRAUD_ARF_TREES=5``.
Types follow the defaults: ints, floats, booleans (``1/true/yes/on``) and comma-separated lists.

>>> import settings
>>> settings.TRANSACTIONS_TOPIC
'transactions'
"""
from __future__ import annotations

import os
from typing import Any

PREFIX = "FRAUD_"


def _env(name: str, default: Any) -> Any:
    raw = os.environ.get(PREFIX + name)
    if raw is None:
        return default
    if isinstance(default, bool):
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"{PREFIX}{name}={raw!r} is not a boolean (use true/false)")
    if isinstance(default, (list, tuple)):
        return [item.strip() for item in raw.split(",") if item.strip()]
    if default is None:
        return raw or None
    try:
        return type(default)(raw)
    except ValueError as exc:
        raise ValueError(f"{PREFIX}{name}={raw!r} is not a valid {type(default).__name__}") from exc


# --- connections -------------------------------------------------------------------------------
APP_ID = _env("APP_ID", "fraud-detector")
KAFKA_BROKER = _env("KAFKA_BROKER", "kafka://127.0.0.1:9092")
SCHEMA_REGISTRY_URL = _env("SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081/apis/ccompat/v7")
WEB_HOST = _env("WEB_HOST", "127.0.0.1")
WEB_PORT = _env("WEB_PORT", 6066)
DATA_DIR = _env("DATA_DIR", "")  # Faust's state folder; empty = <app id>-data in the working dir

# --- topics ------------------------------------------------------------------------------------
TRANSACTIONS_TOPIC = _env("TRANSACTIONS_TOPIC", "transactions")
LABELS_TOPIC = _env("LABELS_TOPIC", "labels")
SCORES_TOPIC = _env("SCORES_TOPIC", "scores")
ANOMALIES_TOPIC = _env("ANOMALIES_TOPIC", "anomalies")
DRIFT_ALERTS_TOPIC = _env("DRIFT_ALERTS_TOPIC", "drift-alerts")
DEAD_LETTERS_TOPIC = _env("DEAD_LETTERS_TOPIC", "dead-letters")
TOPIC_PARTITIONS = _env("TOPIC_PARTITIONS", 1)
TOPIC_REPLICAS = _env("TOPIC_REPLICAS", 1)

# --- stream processing -------------------------------------------------------------------------
BATCH_SIZE = _env("BATCH_SIZE", 200)  # stream.take(n, ...)
BATCH_WITHIN_S = _env("BATCH_WITHIN_S", 0.05)
PRODUCER_LINGER_MS = _env("PRODUCER_LINGER_MS", 5)
BROKER_COMMIT_INTERVAL_S = _env("BROKER_COMMIT_INTERVAL_S", 1.0)

# Which agents the worker runs (comma-separated): scoring, anomaly, drift.
AGENTS = _env("AGENTS", ["scoring", "anomaly", "drift"])

# --- online learning (scoring agent) --------------------------------------------------------------
DECISION_THRESHOLD = _env("DECISION_THRESHOLD", 0.5)
SEED = _env("SEED", 42)

# --- windows and anomaly detection -----------------------------------------------------------------

# --- drift monitoring ------------------------------------------------------------------------------

# --- spark backfill --------------------------------------------------------------------------------

# --- observability ---------------------------------------------------------------------------------

# --- security (empty = off) ----------------------------------------------------------------------
SCHEMA_REGISTRY_USER = _env("SCHEMA_REGISTRY_USER", "")
SCHEMA_REGISTRY_PASSWORD = _env("SCHEMA_REGISTRY_PASSWORD", "")
