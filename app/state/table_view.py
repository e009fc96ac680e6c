"""A read-only copy of a whole changelog-backed table, kept current by following its changelog.

Faust partitions a table like its source topic: a worker holds the keys of its own partitions only.
A table that every worker must read whole (the terminal windows: any card, in any partition, may
use any terminal) is written as usual by its partitions' owners, and read through a
:class:`TableView`: a :class:`~app.state.topic_follower.TopicFollower` of every partition of the
table's changelog topic, from the beginning, applying each record (a value, or a tombstone that
deletes the key) to ``data`` as it comes. Faust's own ``GlobalTable`` is meant for this, but with
faust-streaming 0.15.3 and two workers its copies stopped following the changelog after the first
rebalance (see docs/architecture.md, "Window features").

The copy lags the table's writers by the changelog's round trip (tens of milliseconds on a quiet
broker); :attr:`TableView.ready` says it has read up to the end offsets it found at start. After a
lost connection the changelog is read again from the beginning into a new copy, which replaces the
one served once it is read up to the end offsets found at that start (so keys deleted meanwhile,
their tombstones compacted away, do not linger).

>>> view = TableView("t-changelog", broker="localhost:9092")
>>> view.apply([(b"a", b"1"), (b"b", b"2"), (b"a", None)])
>>> view.data
{b'b': b'2'}
"""
from __future__ import annotations

from app.state.topic_follower import TopicFollower


class TableView(TopicFollower):
    """The latest value of each key of the changelog ``topic`` on ``broker`` (``client_options``:
    the security settings of :func:`app.security.kafka_client_options`), in :attr:`data`."""

    def __init__(self, topic: str, *, broker: str, client_options: dict | None = None) -> None:
        super().__init__(topic, broker=broker, client_options=client_options)
        self._fresh: dict[bytes, bytes | None] | None = None  # a copy being read again, until read
        self._fresh_read_to: dict[int, int] = {}  # how far that copy has read

    def _begin(self) -> None:
        self._fresh = {} if self.data else None
        self._fresh_read_to = {}

    def _take(self, records: list[tuple[bytes, bytes | None]]) -> None:
        if self._fresh is None:
            self.apply(records)
        else:
            self._fresh.update(records)

    def _taken(self, read_to: dict[int, int]) -> None:
        if self._fresh is None:
            super()._taken(read_to)
        else:  # the copy served, and how far it has read, stay as they are until the new one is read
            self._fresh_read_to.update(read_to)

    def _caught_up(self) -> None:
        if self._fresh is not None:
            self.data = {k: v for k, v in self._fresh.items() if v is not None}
            self.read_to = self._fresh_read_to
            self._fresh = None
        super()._caught_up()
