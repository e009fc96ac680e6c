"""The newest model snapshot, for every worker: a follower of the snapshots topic.

In central learning (``docs/scaleout.md``) the learner writes signed snapshots of its model to a
compacted topic keyed by model name. Every worker reads that topic outside the consumer group (a
:class:`~app.state.topic_follower.TopicFollower`, as :class:`~app.state.table_view.TableView` reads
a changelog), but from the last record of each partition (the newest snapshot; the older ones,
until compaction removes them, are hundreds of kilobytes each and superseded), then each record as
it comes, keeping the latest per key. Its scorer asks :meth:`SnapshotFollower.newest` between two
batches. A record is decoded (its signature verified, by ``decode``) once, when it is first asked
for; one that does not decode is logged, counted in
``fraud_state_rejected_total{state="model snapshot"}`` and never served: the replica keeps the
model it has until a snapshot that decodes comes. :attr:`SnapshotFollower.ready` turns true once
the records the topic held at the start are read, or once the topic has not shown up for
``missing_wait_s`` (no learner has written a snapshot yet: there is nothing to wait for).

>>> import types
>>> def decode(blob):
...     if not blob.startswith(b"ok:"):
...         raise ValueError("bad signature")
...     name, version = blob[3:].decode().split("/")
...     return types.SimpleNamespace(model_name=name, version=version)
>>> follower = SnapshotFollower("snapshots", decode, broker="localhost:9092")
>>> follower.apply([(b"lr", b"ok:lr/lr-g0@1000"), (b"arf", b"ok:arf/arf-g0@5")])
>>> follower.newest("lr").version
'lr-g0@1000'
>>> follower.apply([(b"lr", b"forged")])  # refused: the last good one stays served
>>> follower.newest("lr").version, follower.refused
('lr-g0@1000', 1)
>>> follower.apply([(b"lr", b"ok:lr/lr-g0@2000")])
>>> follower.newest("lr").version
'lr-g0@2000'
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from app import metrics
from app.state.topic_follower import TopicFollower

log = logging.getLogger(__name__)


class SnapshotFollower(TopicFollower):
    """The snapshots of ``topic`` on ``broker`` (``client_options``: the security settings of
    :func:`app.security.kafka_client_options`), each decoded and verified by ``decode(bytes)``
    (which raises for one it refuses) into an object with ``model_name`` and ``version``."""

    batch_records = 100  # snapshots are hundreds of kilobytes each

    def __init__(self, topic: str, decode: Callable[[bytes], Any], *, broker: str,
                 client_options: dict | None = None, missing_wait_s: float = 5.0) -> None:
        super().__init__(topic, broker=broker, client_options=client_options, missing_wait_s=missing_wait_s)
        self.decode = decode
        self.refused = 0
        self._decoded: dict[bytes, tuple[bytes, Any]] = {}  # key -> (the record decoded, its snapshot or None)
        self._served: dict[str, Any] = {}  # model name -> the newest snapshot that decoded

    async def _seek(self, consumer, ends: dict) -> None:
        for tp, end in ends.items():
            consumer.seek(tp, max(end - 1, 0))  # the last record (below the log start: the earliest)

    def _missing(self) -> None:
        if not self.ready:
            log.info("no snapshot topic %s yet: the replica serves without a snapshot until one comes", self.topic)
            self.ready = True

    def _contents(self) -> str:
        return f"model snapshots {sorted(self.data)}"

    def newest(self, model_name: str) -> Any:
        """The newest snapshot of ``model_name`` that decoded, or None."""
        for key, blob in list(self.data.items()):
            seen = self._decoded.get(key)
            if seen is not None and seen[0] is blob:
                continue
            try:
                snapshot = self.decode(blob)
            except Exception as exc:  # noqa: BLE001 - any refusal: logged, counted, never served
                snapshot = None
                self.refused += 1
                log.error("refused the model snapshot under key %r of %s: %s", key, self.topic, exc)
                metrics.STATE_REJECTED.labels(state="model snapshot",
                                              reason=getattr(exc, "reason", type(exc).__name__)).inc()
            self._decoded[key] = (blob, snapshot)
            if snapshot is not None:
                self._served[snapshot.model_name] = snapshot
        return self._served.get(model_name)
