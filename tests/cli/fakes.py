"""A :class:`app.cli.cluster.Cluster` in memory, and a context on it, for the command tests."""
from __future__ import annotations

from app.cli.cluster import Group, Record
from app.cli.context import Context

KEY = "a state key of the unit tests, 32 bytes"


class FakeCluster:
    """Topics as lists of records per partition, a consumer group, and what was sent."""

    def __init__(self, group: Group | None = None) -> None:
        self.topics: dict[str, dict[int, list[Record]]] = {}
        self.group = group or Group("fraud-test", "Empty")
        self.sent: list[tuple] = []
        self.created: list[str] = []

    def add_topic(self, name: str, partitions: int = 1) -> None:
        self.topics.setdefault(name, {p: [] for p in range(partitions)})

    def append(self, topic: str, partition: int, key, value) -> None:
        records = self.topics[topic][partition]
        records.append(Record(partition, len(records), key, value))

    def describe_group(self, group: str) -> Group:
        if isinstance(self.group, Exception):
            raise self.group
        return self.group

    def partitions(self, topic: str) -> list[int]:
        return sorted(self.topics.get(topic, {}))

    def read(self, topic: str, partitions=None, since_offset: int = 0) -> list[Record]:
        return [r for p, records in sorted(self.topics.get(topic, {}).items()) if partitions is None or p in partitions
                for r in records if r.offset >= since_offset]

    def create_compacted_topic(self, topic: str, partitions: int, replicas: int) -> None:
        self.created.append(topic)
        self.add_topic(topic, partitions)

    def send(self, messages) -> int:
        for topic, partition, key, value in messages:
            self.sent.append((topic, partition, key, value))
            if topic in self.topics:
                self.append(topic, partition, key, value)
        return len(messages)


def context(cluster: FakeCluster, **overrides) -> Context:
    values = dict(cluster=cluster, app_id="fraud-test", checkpoint_table="model-checkpoints",
                  dead_letters_topic="dead-letters", state_key=KEY, warm_start_path="",
                  registry_url="http://registry.invalid", registry_auth=None, web_url="http://127.0.0.1:1",
                  topic_partitions=2)
    values.update(overrides)
    return Context(**values)
