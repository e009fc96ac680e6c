"""Outputs confirmed before their input is acknowledged, and a worker that stops when one is refused.

Every agent sends a batch's outputs (scores, anomalies, drift alerts, dead letters), then awaits
the broker's confirmation of all of them (:func:`confirmed`) before the batch's events are
acknowledged: Faust commits only acknowledged offsets, so an input is committed only once its
outputs are in Kafka.

A send that fails after the producer's own retries (the broker refused the record, say it is larger
than the topic's ``max.message.bytes``, or stayed unreachable past the producer's request timeout)
stops the worker at once (:func:`stop_worker`): logged as critical, exit code
:data:`SEND_FAILED_EXIT_CODE`, like a crash, without committing or checkpointing anything more. The
batch that was not confirmed was not acknowledged, so the restarted worker (or the partitions' next
owner) consumes it again: nothing is lost, and what was sent before the failure may come twice
(at-least-once). Retrying in place is left to the producer: a worker that kept consuming past a
refused output would block its partition's commits behind the unacknowledged batch and look healthy
meanwhile; one that exits is seen and restarted by its supervisor, and keeps exiting (a restart
loop, visible) while the fault lasts.

>>> import asyncio
>>> async def sent(value):  # what ``await topic.send(...)`` gives: the future of the record's metadata
...     future = asyncio.get_running_loop().create_future()
...     future.set_result(value)
...     return future
>>> async def batch():
...     return await confirmed([await sent("offset 7"), await sent("offset 8")], "scores")
>>> asyncio.run(batch())
['offset 7', 'offset 8']
"""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Awaitable, Iterable

log = logging.getLogger(__name__)

SEND_FAILED_EXIT_CODE = 74  # EX_IOERR: an output the broker did not confirm


async def confirmed(futures: Iterable[Awaitable], what: str) -> list:
    """The results (record metadata) of ``futures``, the sends of one batch to ``what``, once the
    broker has confirmed them all; if one fails, the worker stops (:func:`stop_worker`)."""
    futures = list(futures)
    if not futures:
        return []
    try:
        return await asyncio.gather(*futures)
    except Exception as exc:
        stop_worker(f"sending to {what} failed: {exc!r}")
        raise


def stop_worker(reason: str, code: int = SEND_FAILED_EXIT_CODE) -> None:
    """Stop the worker process now with exit code ``code`` (see the module's docstring)."""
    log.critical("%s: the worker stops (exit code %d); restarted, it consumes again what was not "
                 "acknowledged", reason, code)
    logging.shutdown()
    _exit(code)


_exit = os._exit  # replaced by tests that check that the worker would stop
