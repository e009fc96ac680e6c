"""Async checkpoints on time as well as on events: a partition with something unsaved is
checkpointed once ``every_s`` seconds have passed since its last checkpoint."""
from __future__ import annotations

import asyncio

import pytest

from app.state.checkpointed import AsyncCheckpointedStates, open_envelope
from tests.fakes import ChangelogTable


class Tally:
    def __init__(self) -> None:
        self.since = 0  # events taken in since the last checkpoint


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def open_tally(partition, blob, positions):
    return Tally()


async def dump(tally: Tally) -> bytes:
    tally.since = 0
    return b"tally"


def make(table: ChangelogTable, clock: Clock, every_s: float | None = 60.0, every: int = 1000):
    return AsyncCheckpointedStates(table, "tally", open=open_tally, dump=dump, pending=lambda t: t.since,
                                   every=every, every_s=every_s, clock=clock)


async def settled(states: AsyncCheckpointedStates) -> None:
    while states._checkpointing:
        await asyncio.sleep(0)


def test_a_rare_event_is_checkpointed_once_every_s_has_passed_not_before():
    async def run():
        table, clock = ChangelogTable(), Clock()
        states = make(table, clock)
        tally = await states.get(0)
        tally.since = 1  # one labelled event, far below `every`
        clock.now += 59.9
        assert not states.maybe_checkpoint(0) and table.written == []
        clock.now += 0.1
        assert states.maybe_checkpoint(0)
        await settled(states)
        assert len(table.written) == 1
        # nothing unsaved since: time alone does not checkpoint
        clock.now += 3600
        assert not states.maybe_checkpoint(0)
        # the clock counts from the last checkpoint, not from the last event: after an hour
        # without news, the next event is saved at once, and the one after that 60 s later
        tally.since = 1
        assert states.maybe_checkpoint(0)
        await settled(states)
        tally.since = 1
        clock.now += 30
        assert not states.maybe_checkpoint(0)
        clock.now += 30
        assert states.maybe_checkpoint(0)
        await settled(states)
        assert len(table.written) == 3

    asyncio.run(run())


def test_positions_moved_past_without_learning_count_as_unsaved():
    # transactions scored without a label teach nothing, but their offsets must be saved, or a
    # crash reads back every one of them since the last checkpoint
    async def run():
        table, clock = ChangelogTable(), Clock()
        states = make(table, clock)
        await states.get(0)
        for offset in range(5000):
            states.advance(0, "transactions", offset)
        assert states.unsaved(0)
        clock.now += 60
        assert states.maybe_checkpoint(0)
        await settled(states)
        (position, _), = [open_envelope(value) for _, _, value in table.written]
        assert position == {"transactions": 4999} and not states.unsaved(0)
        clock.now += 60
        assert not states.maybe_checkpoint(0)

    asyncio.run(run())


def test_without_every_s_only_the_count_of_events_paces_checkpoints():
    async def run():
        table, clock = ChangelogTable(), Clock()
        states = make(table, clock, every_s=None, every=3)
        tally = await states.get(0)
        tally.since = 2
        clock.now += 10 ** 6
        assert not states.maybe_checkpoint(0)
        tally.since = 3
        assert states.maybe_checkpoint(0)
        await settled(states)
        assert len(table.written) == 1

    asyncio.run(run())


def test_positions_alone_are_saved_on_revocation():
    async def run():
        table, clock = ChangelogTable(), Clock()
        states = make(table, clock)
        await states.get(0)
        await states.get(1)
        states.advance(0, "transactions", 41)
        await states.checkpoint_and_forget([0, 1])  # 1 has nothing new: not written
        return [(partition, open_envelope(value)[0]) for partition, _, value in table.written]

    assert asyncio.run(run()) == [(0, {"transactions": 41})]


def test_a_non_positive_every_s_is_refused():
    with pytest.raises(ValueError, match="every_s"):
        make(ChangelogTable(), Clock(), every_s=0)
