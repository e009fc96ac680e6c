"""Stand-ins shared by the unit tests."""
from __future__ import annotations


class ChangelogTable:
    """What the changelog helpers (:mod:`app.state.changelog`) use of a Faust table: its data, and
    the (partition, key, value) of each changelog message sent, in order."""

    def __init__(self) -> None:
        self.data: dict = {}
        self.written: list[tuple] = []

    def send_changelog(self, partition, key, value, **kwargs) -> None:
        self.written.append((partition, key, value))


class SentRecords:
    """An output topic that records what is sent to it: (key, value) in order. As with a Faust
    topic, ``await send(...)`` gives the future of the broker's confirmation: it fails with
    ``refuse`` (an exception) when one is set."""

    def __init__(self, name: str, refuse: Exception | None = None) -> None:
        self.name = name
        self.refuse = refuse
        self.sent: list[tuple] = []

    def get_topic_name(self) -> str:
        return self.name

    async def send(self, key=None, value=None, **kwargs):
        import asyncio

        self.sent.append((key, value))
        future = asyncio.get_running_loop().create_future()
        if self.refuse is not None:
            future.set_exception(self.refuse)
        else:
            future.set_result((self.name, len(self.sent) - 1))
        return future


class SentDeadLetters:
    """A dead-letter sink that records (error, message) in order."""

    def __init__(self) -> None:
        self.sent: list[tuple] = []

    async def send(self, exc, message) -> None:
        self.sent.append((exc, message))


def agent_app(name: str):
    """A Faust app for agents under ``test_context()`` (in-memory, never started)."""
    import uuid

    import faust

    return faust.App(f"{name}-{uuid.uuid4().hex[:8]}", broker="kafka://127.0.0.1:1", store="memory://")


def agent_topics(app):
    """What the agents use of :class:`app.topics.Topics`: in-memory input topics (values are
    put as records) and output topics that record what is sent."""
    import types

    return types.SimpleNamespace(
        transactions=app.topic("transactions"), labels=app.topic("labels"), scores=app.topic("scores"),
        anomalies=SentRecords("anomalies"), drift_alerts=SentRecords("drift-alerts"), dead_letters=SentDeadLetters(),
    )


def assign(app, partitions, topic: str = "transactions") -> None:
    """Put a Faust app in the state it is in once its assignment (``partitions`` of ``topic``) is
    made and its tables are recovered."""
    from faust.assignor.client_assignment import ClientAssignment

    app.assignor._assignment = ClientAssignment(actives={topic: list(partitions)}, standbys={})
    app.rebalancing = False
    app.tables.on_actives_ready()


def web_client(app):
    """An aiohttp test client on the Faust app's web server (its pages as registered)."""
    from aiohttp.test_utils import TestClient, TestServer

    app.web.init_server()
    return TestClient(TestServer(app.web.web_app))
