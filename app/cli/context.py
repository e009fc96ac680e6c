"""What every command works with: the settings it acts on and the cluster it talks to.

The values come from :mod:`settings` (``FRAUD_*`` environment variables), as the workers read
them, so an operator runs the command line with the environment of the app it acts on; ``--broker``
and ``--app-id`` override the two that differ most often.

>>> context = Context.from_settings(__import__("settings"), cluster=None)
>>> context.changelog_topic == f"{context.app_id}-{context.checkpoint_table}-changelog"
True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.cli.cluster import Cluster


@dataclass
class Context:
    """The app a command acts on (its id, tables, topics, state key) and its :class:`Cluster`."""

    cluster: Any
    app_id: str
    checkpoint_table: str
    dead_letters_topic: str
    state_key: str
    warm_start_path: str
    registry_url: str
    registry_auth: tuple[str, str] | None
    web_url: str
    topic_partitions: int = 1
    topic_replicas: int = 1
    max_bytes: int = 64 * 1024 * 1024

    @classmethod
    def from_settings(cls, s, cluster: Any = "connect", broker: str | None = None,
                      app_id: str | None = None) -> "Context":
        """The context of settings ``s`` (a :class:`Cluster` on ``broker`` or ``KAFKA_BROKER`` unless
        ``cluster`` is given)."""
        if cluster == "connect":
            from app.security import kafka_client_options

            cluster = Cluster(broker or s.KAFKA_BROKER, kafka_client_options(s), s.CHECKPOINT_MAX_BYTES)
        host = "127.0.0.1" if s.WEB_HOST in ("", "0.0.0.0", "::") else s.WEB_HOST
        return cls(
            cluster=cluster, app_id=app_id or s.APP_ID, checkpoint_table=s.CHECKPOINT_TABLE,
            dead_letters_topic=s.DEAD_LETTERS_TOPIC, state_key=s.STATE_KEY, warm_start_path=s.WARM_START_PATH,
            registry_url=s.SCHEMA_REGISTRY_URL,
            registry_auth=(s.SCHEMA_REGISTRY_USER, s.SCHEMA_REGISTRY_PASSWORD) if s.SCHEMA_REGISTRY_USER else None,
            web_url=f"http://{host}:{s.WEB_PORT}", topic_partitions=s.TOPIC_PARTITIONS,
            topic_replicas=s.TOPIC_REPLICAS, max_bytes=s.CHECKPOINT_MAX_BYTES,
        )

    @property
    def changelog_topic(self) -> str:
        """The changelog topic of the model checkpoint table (Faust names it ``<app id>-<table>-changelog``)."""
        return f"{self.app_id}-{self.checkpoint_table}-changelog"
