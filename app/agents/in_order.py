"""Work on a stream's batches done in the background, one batch after another, in their order.

An agent step whose work may wait on something slow of its own (the anomaly detectors' checkpoint,
pickled in a worker thread) runs its batches through an :class:`InOrder`: the step returns as soon
as the batch's work is queued, the caller goes on with the batch (scoring it, taking the next), and
acknowledges the batch once the future given for it is done.

>>> import asyncio
>>> async def demo():
...     done, lane = [], InOrder()
...     async def work(batch, pause):
...         await asyncio.sleep(pause)
...         done.append(batch)
...     first, second = lane.add(work("first", 0.02)), lane.add(work("second", 0.0))
...     await second
...     return done, first.done()
>>> asyncio.run(demo())
(['first', 'second'], True)

Work that fails fails the work queued after it too (which then never runs), so no later batch is
acknowledged:

>>> async def failing():
...     lane = InOrder()
...     async def broken():
...         raise OSError("the broker refused it")
...     async def fine():
...         return "ran"
...     first, second = lane.add(broken()), lane.add(fine())
...     return [repr(outcome) for outcome in await asyncio.gather(first, second, return_exceptions=True)]
>>> asyncio.run(failing())
["OSError('the broker refused it')", "OSError('the broker refused it')"]
"""
from __future__ import annotations

import asyncio
from typing import Any, Coroutine


class InOrder:
    """Coroutines run in the background, each once the one added before it has ended."""

    def __init__(self) -> None:
        self._last: asyncio.Future | None = None

    def add(self, work: Coroutine[Any, Any, Any]) -> asyncio.Future:
        """Run ``work`` after the work added before it; the future of its result."""
        task = asyncio.ensure_future(_after(self._last, work))
        task.add_done_callback(_retrieved)  # its failure is raised to whoever awaits it, not logged as lost
        self._last = task
        return task


async def _after(before: asyncio.Future | None, work: Coroutine[Any, Any, Any]) -> Any:
    if before is not None:
        try:
            await before
        except BaseException:
            work.close()  # it never runs
            raise
    return await work


def _retrieved(task: asyncio.Future) -> None:
    if not task.cancelled():
        task.exception()
