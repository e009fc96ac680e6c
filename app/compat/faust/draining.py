"""Handing fetched messages to the streams without four tasks per message.

The cost (faust-streaming 0.15.3 with mode-streaming 0.7.1): Faust's fetch loop
(``Consumer._drain_messages``) hands each message to the conductor (which puts it on the queues
of the streams that read its topic) through ``Service.wait_first(callback(message),
suspend_flow.wait())``, so that a hand-off blocked on a full queue is given up when a rebalance
suspends the flow. ``wait_first`` wraps the hand-off, the flow's event and the consumer's stopped
and crashed events in four tasks, waits for the first with ``asyncio.wait`` and cancels the three
others: for every message, although a hand-off almost never waits (the queues hold thousands of
events). Profiled on the scoring path, that was about a tenth of the worker's CPU per event.

The mend: the fetch loop runs the first step of the hand-off in place. A hand-off that completes
there (no full queue: nothing to wait for) is done, with no task made; one that has to wait goes
on as before, its remaining steps in a task given to ``wait_first`` with the flow's event, so a
rebalance still cuts it short. Everything else in the loop (the read offsets, the gaps of
acknowledged topics, the commit every ``commit_every`` acknowledgements, a turn of the event loop
every 100 messages) is Faust's. The hand-off (the conductor putting the event on the channels'
queues) sets no context variable, so running its first step in the fetch loop's context instead of a
task's copy of it changes nothing. :func:`finish` runs the remaining steps exactly as a task would run
the whole coroutine: it waits for what each step waited for and resumes the coroutine with its
outcome, cancellation included.

>>> import asyncio
>>> async def hand_off(queue, item):
...     await queue.put(item)
...     return item
>>> async def demo():
...     queue = asyncio.Queue(maxsize=1)
...     first = hand_off(queue, "a")
...     done_in_place = run_first_step(first)          # room in the queue: done in its first step
...     second = hand_off(queue, "b")
...     waiting = run_first_step(second)               # the queue is full: it waits
...     task = asyncio.ensure_future(finish(second, waiting.yielded))
...     await asyncio.sleep(0)
...     assert not task.done()
...     queue.get_nowait()                              # room again: the hand-off completes
...     return done_in_place.done, waiting.done, await task, queue.get_nowait()
>>> asyncio.run(demo())
(True, False, 'b', 'b')
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Coroutine, NamedTuple, cast

from faust.transport.consumer import CONSUMER_FETCHING, Consumer

from app.compat.faust.patching import patch_once, require

log = logging.getLogger(__name__)

#: The faust-streaming versions whose ``Consumer._drain_messages`` this copies.
FAUST_VERSIONS = ("0.15.3",)
#: The mode-streaming versions whose ``Service.wait_first`` and ``Service.sleep`` it calls.
MODE_VERSIONS = ("0.7.1",)

_PATCHED = "_fraud_hands_off_in_place"


class FirstStep(NamedTuple):
    """The outcome of a coroutine's first step: ``done`` (it returned) or what it waits on."""

    done: bool
    yielded: Any = None


def run_first_step(coro: Coroutine) -> FirstStep:
    """Run ``coro`` up to its first wait (an exception it raises before that propagates)."""
    try:
        yielded = coro.send(None)
    except StopIteration:
        return FirstStep(True)
    return FirstStep(False, yielded)


async def finish(coro: Coroutine, yielded: Any) -> Any:
    """The rest of ``coro``, which waits on ``yielded`` (an asyncio future, or None for a bare turn
    of the event loop) after its first step; its result. A cancellation while it waits cancels
    what it waits on and is raised inside ``coro``, as for a task."""
    while True:
        try:
            if yielded is None:
                await asyncio.sleep(0)
            else:
                yielded._asyncio_future_blocking = False  # taken, as a task takes what its coroutine yields
                await yielded
        except BaseException as exc:  # noqa: BLE001 - passed into the coroutine, as a task would
            step, argument = coro.throw, exc
        else:
            step, argument = coro.send, None
        try:
            yielded = step(argument)
        except StopIteration as stop:
            return stop.value


async def _drain_messages(self, fetcher) -> None:  # pragma: no cover - the worker's fetch loop
    # faust-streaming 0.15.3's Consumer._drain_messages; only the hand-off differs (marked)
    callback = self.callback
    getmany = self.getmany
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set

    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    flag_consumer_fetching = CONSUMER_FETCHING
    set_flag = self.diag.set_flag
    unset_flag = self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for

    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep

    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(flag_consumer_fetching)
            ait = cast(Any, getmany(timeout=1.0))
            await self.sleep(0)
            if not self.should_stop:
                async for tp, message in ait:
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0

                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset:
                            acks_enabled = acks_enabled_for(message.topic)
                            if acks_enabled:
                                await self._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None:
                            if self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                        # the mend: the hand-off's first step here; a task only if it has to wait
                        hand_off = callback(message)
                        first = run_first_step(hand_off)
                        if not first.done:
                            await self.wait_first(finish(hand_off, first.yielded), self.suspend_flow.wait())
                        set_read_offset(tp, offset)
                    else:
                        self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r", offset, message.key, message.value)
                unset_flag(flag_consumer_fetching)

    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(flag_consumer_fetching)


def check() -> None:
    """Raise :class:`~app.compat.faust.patching.UnsupportedVersion` unless the installed
    faust-streaming and mode-streaming are among :data:`FAUST_VERSIONS` and :data:`MODE_VERSIONS`."""
    require("faust-streaming", FAUST_VERSIONS, mend=__name__)
    require("mode-streaming", MODE_VERSIONS, mend=__name__)


def install() -> type:
    """Patch Faust's :class:`Consumer` (once); returns it. Checks the versions first (:func:`check`)."""
    check()
    return patch_once(Consumer, _PATCHED, {(Consumer, "_drain_messages"): _drain_messages},
                      "faust Consumer: a message's hand-off to the streams runs in place unless it waits")
