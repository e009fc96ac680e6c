"""The fetch loop's hand-off in place (app.compat.faust.draining)."""
from __future__ import annotations

import asyncio

import pytest
from faust.transport.consumer import Consumer

from app.compat.faust import draining
from app.compat.faust.draining import finish, run_first_step
from app.compat.faust.patching import UnsupportedVersion


async def _put(queue: asyncio.Queue, item, log: list):
    try:
        await queue.put(item)
    except asyncio.CancelledError:
        log.append("cancelled inside")
        raise
    log.append(f"put {item}")
    return item


@pytest.fixture
def hand_off():
    """``hand_off(coro) -> (first step, task)``, in a running loop: ``coro``'s first step run in
    place and, as the fetch loop does when that step waits, the rest in a task running
    :func:`finish` (None when the first step finished ``coro``)."""
    def start(coro) -> tuple:
        first = run_first_step(coro)
        return first, None if first.done else asyncio.ensure_future(finish(coro, first.yielded))
    return start


@pytest.fixture
def put_to_a_full_queue(hand_off):
    """``put_to_a_full_queue() -> (queue, log, first step, task)``, in a running loop: the hand-off
    of ``"b"`` to a queue of one that already holds ``"a"``, so that it waits for room."""
    def start() -> tuple:
        queue, log = asyncio.Queue(maxsize=1), []
        queue.put_nowait("a")
        first, task = hand_off(_put(queue, "b", log))
        return queue, log, first, task
    return start


def test_a_hand_off_with_room_completes_in_its_first_step(hand_off):
    async def go():
        queue, log = asyncio.Queue(maxsize=2), []
        first, task = hand_off(_put(queue, "a", log))
        return first.done, task, log, queue.qsize()

    assert asyncio.run(go()) == (True, None, ["put a"], 1)


def test_a_waiting_hand_off_finishes_in_a_task_once_there_is_room(put_to_a_full_queue):
    async def go():
        queue, log, first, task = put_to_a_full_queue()
        for _ in range(3):
            await asyncio.sleep(0)
        waited = (first.done, task.done(), list(log))
        assert queue.get_nowait() == "a"
        return waited, await task, log, queue.get_nowait()

    assert asyncio.run(go()) == ((False, False, []), "b", ["put b"], "b")


def test_cancelling_the_task_cancels_the_wait_inside_the_hand_off(put_to_a_full_queue):
    async def go():
        queue, log, first, task = put_to_a_full_queue()
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return log, first.yielded.cancelled(), queue.qsize()

    assert asyncio.run(go()) == (["cancelled inside"], True, 1)


def test_an_error_of_what_the_hand_off_waits_for_is_raised_inside_it(hand_off):
    async def waits_for(future, log):
        try:
            await future
        except KeyError as exc:
            log.append(f"caught {exc!r}")
            return "recovered"

    async def go():
        future, log = asyncio.get_running_loop().create_future(), []
        _, task = hand_off(waits_for(future, log))
        future.set_exception(KeyError("k"))
        return await task, log

    assert asyncio.run(go()) == ("recovered", ["caught KeyError('k')"])


def test_a_hand_off_that_yields_the_loop_several_times_runs_to_its_end():
    async def turns(log):
        for i in range(3):
            await asyncio.sleep(0)  # a bare turn of the event loop
            log.append(i)
        await asyncio.sleep(0.01)   # a timer: waits on a future
        return "done"

    async def go():
        log = []
        coro = turns(log)
        first = run_first_step(coro)
        return await finish(coro, first.yielded), log

    assert asyncio.run(go()) == ("done", [0, 1, 2])


def test_an_error_in_the_first_step_propagates():
    async def fails():
        raise ValueError("bad message")

    with pytest.raises(ValueError, match="bad message"):
        run_first_step(fails())


def test_install_patches_faust_s_fetch_loop():
    assert draining.install() is Consumer
    assert Consumer._drain_messages is draining._drain_messages


@pytest.mark.parametrize("versions, refused", [
    ({"faust_streaming": "0.16.0"}, "faust-streaming 0.15.3, but faust-streaming 0.16.0 is installed"),
    ({"mode_streaming": "0.8.0"}, "mode-streaming 0.7.1, but mode-streaming 0.8.0 is installed"),
], ids=["faust", "mode"])
def test_install_refuses_another_faust_or_mode_and_patches_nothing(installed, monkeypatch, versions, refused):
    installed(**versions)
    monkeypatch.delattr(Consumer, draining._PATCHED, raising=False)
    monkeypatch.setattr(Consumer, "_drain_messages", "faust's own")
    with pytest.raises(UnsupportedVersion, match=f"app.compat.faust.draining was written against {refused}"):
        draining.install()
    assert Consumer._drain_messages == "faust's own"
