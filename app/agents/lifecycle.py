"""Revocation and shutdown, written once for every kind of partition state.

An owner of partition state (the scorer, the anomaly detectors, the drift monitors) has
``async revoked(lost)``, where ``lost`` maps each topic to the partitions of it this worker gives
up (their state is checkpointed, then dropped; the new owner restores it), and ``async close()``
(checkpoint everything on a clean shutdown, then release what it holds). :func:`register` calls
them, in order, on Faust's ``on_partitions_revoked`` and ``on_before_shutdown`` signals (the
producer is flushed after the latter).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Iterable, Protocol

log = logging.getLogger(__name__)


class PartitionStateOwner(Protocol):
    async def revoked(self, lost: dict[str, set[int]]) -> None: ...

    async def close(self) -> None: ...


def by_topic(partitions: Iterable) -> dict[str, set[int]]:
    """Topic partitions (``.topic``, ``.partition``) grouped by topic.

    >>> from collections import namedtuple
    >>> TP = namedtuple("TP", "topic partition")
    >>> by_topic([TP("a", 0), TP("b", 1), TP("a", 2)])
    {'a': {0, 2}, 'b': {1}}
    """
    out: dict[str, set[int]] = defaultdict(set)
    for tp in partitions:
        out[tp.topic].add(tp.partition)
    return dict(out)


def register(app, owners: list[PartitionStateOwner]) -> None:
    """Checkpoint and drop the owners' state of revoked partitions, and all of it on shutdown."""

    async def on_revoked(sender, revoked, **kwargs) -> None:
        lost = by_topic(revoked)
        for owner in owners:
            await owner.revoked(lost)

    async def on_shutdown(sender, **kwargs) -> None:
        for owner in owners:
            try:
                await owner.close()
            except Exception:
                log.exception("%r: closing failed", owner)

    app.on_partitions_revoked.connect(on_revoked)
    app.on_before_shutdown.connect(on_shutdown)
