"""One test's own topic names and app id (a unique prefix), so that tests never see each other's
messages on the shared broker.

>>> names = Names("demo")
>>> names.prefix.startswith("demo-") and names.transactions == names.prefix + ".transactions"
True
>>> names.dead_letters == names.prefix + ".dead-letters" and names.app_id == "fraud-" + names.prefix
True
>>> names.env()["FRAUD_SCORES_TOPIC"] == names.scores
True
>>> names.changelog("pending") == names.app_id + "-pending-changelog"
True
"""
from __future__ import annotations

import uuid

TOPIC_KEYS = ("TRANSACTIONS", "LABELS", "SCORES", "ANOMALIES", "DRIFT_ALERTS", "DEAD_LETTERS")


class Names:
    """The topic names and app id of one test."""

    def __init__(self, tag: str = "t") -> None:
        self.prefix = f"{tag}-{uuid.uuid4().hex[:8]}"
        self.app_id = f"fraud-{self.prefix}"
        for key in TOPIC_KEYS:
            setattr(self, key.lower(), f"{self.prefix}.{key.lower().replace('_', '-')}")

    @property
    def topic_prefixes(self) -> tuple[str, str]:
        """Every topic of the run starts with one of these: its own, and its app's (changelogs)."""
        return f"{self.prefix}.", f"{self.app_id}-"

    def changelog(self, table: str) -> str:
        """The changelog topic of the app's table ``table`` (Faust's ``<app id>-<table>-changelog``)."""
        return f"{self.app_id}-{table}-changelog"

    def topics(self) -> list[str]:
        """The test's own topics (not its app's changelogs), in :data:`TOPIC_KEYS` order."""
        return [getattr(self, key.lower()) for key in TOPIC_KEYS]

    def env(self) -> dict[str, str]:
        """The worker settings that put it on these topics, with this app id."""
        env = {"FRAUD_APP_ID": self.app_id}
        for key in TOPIC_KEYS:
            env[f"FRAUD_{key}_TOPIC"] = getattr(self, key.lower())
        return env
