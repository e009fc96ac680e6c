"""Resuming the streams after Faust's table recovery without losing a message.

The problem (faust-streaming 0.15.3, ``faust.tables.recovery.Recovery``): when the tables are
recovered after a start or a rebalance, ``on_recovery_completed`` (and ``_resume_streams``, its twin
for the no-recovery path) does, in this order:

1. resume fetching the stream partitions (``consumer.resume_partitions``),
2. seek them to the committed offsets (an await: the fetcher keeps running meanwhile),
3. ``app.flow_control.resume()``, which **empties every agent's input queue**.

Messages of the stream partitions that reach the agents' queues between 1 and 3 are emptied out
unprocessed. Those fetched after the seek has taken effect are lost without a trace: the consumer's
read offset is already past them and nothing moves it back. Any message that arrives while a worker
finishes its recovery can hit this (a restart under traffic, a failover). Seen here as a missing
window update after a restart and a partition that never got its last score after a failover.

The fix keeps Faust's steps and changes their order: seek, resume flow control (the queues are
emptied while nothing of the stream partitions can be in them), and only then resume fetching the
stream partitions. :func:`install` patches :class:`faust.tables.recovery.Recovery` in place, on
faust-streaming 0.15.3 only (:data:`FAUST_VERSIONS`); the worker calls it once, before the app is
created.

Upstream (github.com/faust-streaming/faust):

* issue #596 (open) reports this race: the queues are emptied after the stream partitions were
  resumed, and the messages fetched in between never reach the agents. It points at step 1 of
  ``on_recovery_completed``, the line this mend moves; its consequence there is a gap in the acked
  offsets that stops the commits.
* pull request #217 (merged, 2021) fixed the same kind of ordering bug one step earlier in
  ``_resume_streams``: flow control was resumed before the seek. This mend keeps that order.
* pull request #253 (merged, 2022) moved ``app.flow_control.resume()`` before
  ``consumer.resume_flow()`` so that nothing would be written to queues about to be emptied, but left
  ``resume_partitions`` before the seek and the reset: the window of steps 1-3 remains.

>>> install() is install()   # idempotent: the same patched class
True
"""
from __future__ import annotations

import asyncio
from typing import Any

from faust.tables.recovery import Recovery

from app.compat.faust.patching import patch_once, require

#: The faust-streaming versions whose ``Recovery`` methods this module copies.
FAUST_VERSIONS = ("0.15.3",)

_PATCHED = "_fraud_resume_in_order"


async def resume_stream_partitions(recovery: Any) -> None:
    """Seek the stream partitions to their committed offsets, resume flow control (which empties the
    agents' queues), then resume fetching them: nothing fetched can be thrown away."""
    app = recovery.app
    consumer = app.consumer
    assignment = consumer.assignment()
    if assignment:
        recovery.log.info("Seek stream partitions to committed offsets.")
        await recovery._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
    else:
        recovery.log.info("Resuming streams with empty assignment")
    recovery.completed.set()
    recovery.log.info("Resuming flow...")
    app.flow_control.resume()
    consumer.resume_flow()
    consumer.resume_partitions({tp for tp in assignment if not recovery._is_changelog_tp(tp)})
    await app._fetcher.maybe_start()


async def on_recovery_completed(self: Recovery, generation_id: int = 0) -> None:
    """:meth:`faust.tables.recovery.Recovery.on_recovery_completed`, resuming in the safe order."""
    self.log.info("Restore complete!")
    await self.app.on_rebalance_complete.send()
    self._set_recovery_ended()
    callbacks = [asyncio.ensure_future(table.on_recovery_completed(self.actives_for_table[table],
                                                                   self.standbys_for_table[table]))
                 for table in self.tables.values()]
    if callbacks:
        await asyncio.wait(callbacks)
    if self.app.consumer_generation_id != generation_id:
        self.log.warning(f"Recovery rebalancing again app id {self.app.consumer_generation_id} "
                         f"param {generation_id}")
        return
    await resume_stream_partitions(self)
    self.tables.on_actives_ready()
    if not self.app.assignor.assigned_standbys():
        self.tables.on_standbys_ready()
    self.app.on_rebalance_end()
    self.log.info("Worker ready")


async def _resume_streams(self: Recovery, generation_id: int = 0) -> None:
    """:meth:`faust.tables.recovery.Recovery._resume_streams`, resuming in the safe order."""
    await self.app.on_rebalance_complete.send()
    if self.app.consumer_generation_id != generation_id:
        self.log.warning("Recovery rebalancing again")
        return
    await resume_stream_partitions(self)
    self.tables.on_actives_ready()
    self.tables.on_standbys_ready()
    self.app.on_rebalance_end()
    self.log.info("Worker ready")


def check() -> None:
    """Raise :class:`~app.compat.faust.patching.UnsupportedVersion` unless the installed
    faust-streaming is among :data:`FAUST_VERSIONS`."""
    require("faust-streaming", FAUST_VERSIONS, mend=__name__)


def install() -> type:
    """Patch :class:`~faust.tables.recovery.Recovery` (once); returns the class. Checks the version
    first (:func:`check`)."""
    check()
    return patch_once(Recovery, _PATCHED, {(Recovery, "on_recovery_completed"): on_recovery_completed,
                                           (Recovery, "_resume_streams"): _resume_streams},
                      "faust Recovery: stream partitions resume after the seek and the flow-control reset")
