"""Per-partition state checkpointed to a changelog table: restore, pace, revocation, bad blobs."""
from __future__ import annotations

import asyncio
import pickle
import threading

import pytest

from app.learning.learner import CheckpointError
from app.state.checkpointed import CheckpointedStates, envelope, open_envelope
from tests.fakes import ChangelogTable


class Tally:
    def __init__(self, n: int = 0) -> None:
        self.n = n


def load(blob: bytes) -> Tally:
    position, blob = open_envelope(blob)
    if not blob.startswith(b"T"):
        raise CheckpointError("not a tally")
    return Tally(pickle.loads(blob[1:]))


def tallies(table: ChangelogTable, every: int = 10, **kwargs) -> CheckpointedStates[Tally]:
    return CheckpointedStates(table, "tally", new=Tally, dump=dump, load=load,
                              progress=lambda t: t.n, every=every, **kwargs)


def dump(tally: Tally) -> bytes:
    return b"T" + pickle.dumps(tally.n)


def recovered(table: ChangelogTable) -> None:
    """What Faust's recovery of the changelog gives back: the last value of each key."""
    table.data.update({k: v for _, k, v in table.written})


def test_checkpoints_at_the_pace_to_the_partitions_changelog_partition_under_the_prefix():
    table, checkpointed = ChangelogTable(), []
    states = tallies(table, prefix=b"t:", on_checkpoint=lambda p, t: checkpointed.append((p, t.n)))
    for step in range(1, 26):
        states.get(3).n += 1
        assert states.maybe_checkpoint(3) == (step in (10, 20))
    assert [(p, k, load(v).n) for p, k, v in table.written] == [(3, b"t:3", 10), (3, b"t:3", 20)]
    assert checkpointed == [(3, 10), (3, 20)] and states.checkpointed_at == {3: 20}


def test_a_new_owner_restores_the_checkpoint_and_counts_from_it():
    table, opened = ChangelogTable(), []
    first = tallies(table)
    first.get(0).n = 7
    first.checkpoint_and_forget([0])
    recovered(table)
    second = tallies(table, on_open=lambda p, t: opened.append((p, t.n)))
    assert second.get(0).n == 7 and opened == [(0, 7)]
    second.get(0).n += 9
    assert not second.maybe_checkpoint(0)  # 9 since the checkpoint it was restored from, not 16
    second.get(0).n += 1
    assert second.maybe_checkpoint(0)


def test_an_unusable_checkpoint_is_logged_and_replaced_by_a_new_state(caplog):
    table = ChangelogTable()
    table.data[b"5"] = b"junk"
    with caplog.at_level("ERROR"):
        assert tallies(table).get(5).n == 0
    assert "partition 5: the tally checkpoint is unusable (not a tally): starting a new one" in caplog.text


def test_forgetting_writes_only_states_with_news_and_survives_a_failed_write(caplog):
    table = ChangelogTable()
    states = tallies(table)
    states.get(0).n = 3
    states.get(1)  # nothing since it was opened
    states.get(2).n = 4
    real_dump = states.dump
    states.dump = lambda t: real_dump(t) if t.n != 3 else 1 / 0
    with caplog.at_level("ERROR"):
        states.checkpoint_and_forget([0, 1, 2, 9])
    assert [(p, k) for p, k, _ in table.written] == [(2, b"2")]
    assert "partition 0: tally checkpoint failed" in caplog.text
    assert states.partitions() == [] and states.checkpointed_at == {}
    assert not states.maybe_checkpoint(0)  # forgotten: nothing to write


def test_a_pace_below_one_event_is_refused():
    with pytest.raises(ValueError, match="every >= 1"):
        tallies(ChangelogTable(), every=0)


class Source:
    """A partition's source values by offset (offset o holds o), read back like Kafka would be."""

    def __init__(self) -> None:
        self.reads: list[tuple[int, int, int]] = []

    async def read(self, partition: int, start: int, end: int):
        self.reads.append((partition, start, end))
        for offset in range(start, end):
            await asyncio.sleep(0)
            yield offset


def summing(table: ChangelogTable, source: Source, **kwargs) -> CheckpointedStates[Tally]:
    """Tallies of the sum of the source values they took in (each value once: a sum shows a repeat)."""
    def feed(tally: Tally, value: int) -> None:
        tally.n += value

    return tallies(table, catch_up=source.read, feed=feed, **kwargs)


def take(states: CheckpointedStates[Tally], partition: int, offsets) -> None:
    """What an agent does with each source event: into the state unless it is already in."""
    for offset in offsets:
        tally = asyncio.run(states.ready(partition, offset))
        if not states.seen(partition, offset):
            tally.n += offset
            states.advance(partition, offset)


def test_a_checkpoint_keeps_the_position_of_the_last_event_in_it():
    table, source = ChangelogTable(), Source()
    states = summing(table, source, every=10**9)
    take(states, 2, range(100, 105))
    states.checkpoint(2)
    position, blob = open_envelope(table.written[-1][2])
    assert position == 104 and pickle.loads(blob[1:]) == sum(range(100, 105))


@pytest.mark.parametrize("resume_at", [50, 60, 61, 75])
def test_after_a_crash_every_event_goes_in_exactly_once_wherever_the_consumer_resumes(resume_at):
    """The checkpoint holds offsets 0-60; the consumer resumes at the committed offset, before
    the checkpoint's position (redeliveries: not taken in again), right after it, or after it
    (committed after the checkpoint: read back and fed first)."""
    table, source = ChangelogTable(), Source()
    first = summing(table, source)
    take(first, 0, range(0, 61))
    first.checkpoint(0)
    take(first, 0, range(61, 80))  # taken in, then the worker crashes: no checkpoint of these
    recovered(table)

    caught_up = []
    second = summing(table, source, on_caught_up=lambda partition, count: caught_up.append((partition, count)))
    take(second, 0, range(resume_at, 100))
    assert second.get(0).n == sum(range(100))
    assert source.reads == ([(0, 61, resume_at)] if resume_at > 61 else [])
    assert second.positions == {0: 99}
    assert caught_up == [(0, max(resume_at - 61, 0))]  # once, with the number fed


def test_a_state_forgotten_on_revocation_catches_up_again_when_the_partition_comes_back():
    table, source = ChangelogTable(), Source()
    states = summing(table, source)
    take(states, 1, range(0, 10))
    states.checkpoint_and_forget([1])
    recovered(table)
    take(states, 1, range(20, 25))  # another owner took 10-19 meanwhile, but crashed before checkpointing
    assert states.get(1).n == sum(range(25)) and source.reads == [(1, 10, 20)]


def test_without_a_position_or_a_reader_nothing_is_read_back():
    table, source = ChangelogTable(), Source()
    table.data[b"0"] = dump(Tally(7))  # a checkpoint stored before positions were kept
    states = summing(table, source)
    assert asyncio.run(states.ready(0, 500)).n == 7 and not states.seen(0, 0) and source.reads == []

    table.data[b"0"] = envelope(9, dump(Tally(7)))
    states = tallies(table)  # no catch_up reader
    assert asyncio.run(states.ready(0, 500)).n == 7 and states.seen(0, 9) and not states.seen(0, 10)


def test_a_failed_read_back_is_logged_and_the_state_goes_on_with_what_it_got(caplog):
    table = ChangelogTable()
    table.data[b"0"] = envelope(9, dump(Tally(0)))

    async def broken(partition, start, end):
        yield 1
        yield 1
        raise ConnectionError("broker gone")

    states = tallies(table, catch_up=broken, feed=lambda tally, value: setattr(tally, "n", tally.n + value))
    with caplog.at_level("ERROR"):
        assert asyncio.run(states.ready(0, 20)).n == 2
    assert "partition 0: the tally could not catch up on offsets 10-19 (2 read back)" in caplog.text
    assert "broker gone" in caplog.text and states.positions == {0: 19}


class ConfirmedTable(ChangelogTable):
    """A changelog table whose records the test confirms (or refuses) itself, as a broker would."""

    def __init__(self) -> None:
        super().__init__()
        self.futures: list[asyncio.Future] = []

    def send_changelog(self, partition, key, value, **kwargs):
        super().send_changelog(partition, key, value, **kwargs)
        self.futures.append(asyncio.get_running_loop().create_future())
        return self.futures[-1]


@pytest.mark.parametrize("broker", ["confirms", "refuses"])
def test_an_async_checkpoint_counts_as_written_only_once_the_broker_confirms_it(broker):
    from app.state.checkpointed import AsyncCheckpointedStates

    class Tally:
        n = 0

    async def open_tally(partition, blob, positions):
        return Tally()

    async def dump(tally):
        return str(tally.n).encode()

    async def run():
        table, done = ConfirmedTable(), []
        states = AsyncCheckpointedStates(table, "tally", open=open_tally, dump=dump, pending=lambda t: t.n, every=1,
                                         on_checkpoint=lambda partition, state: done.append(partition))
        (await states.get(0)).n = 1
        assert states.maybe_checkpoint(0)
        await asyncio.sleep(0.05)
        assert len(table.written) == 1 and done == []  # written, not yet confirmed: nothing counts on it
        if broker == "confirms":
            table.futures[0].set_result("metadata")
        else:
            table.futures[0].set_exception(RuntimeError("refused"))
        await asyncio.sleep(0.05)
        return done, states.maybe_checkpoint(0)  # a refused checkpoint does not block the next one

    done, again = asyncio.run(run())
    assert done == ([0] if broker == "confirms" else []) and again


class Gate:
    """A ``dump`` (by default the tallies' ``inner``) that waits, in the thread it runs in, until the
    test opens it: what a large state's pickling looks like to the event loop. ``fail``: the
    exception it raises once opened."""

    def __init__(self, inner=None, fail: Exception | None = None) -> None:
        self.inner = dump if inner is None else inner
        self.entered, self.opened, self.fail = threading.Event(), threading.Event(), fail
        self.threads: list[str] = []

    def __call__(self, state) -> bytes:
        self.threads.append(threading.current_thread().name)
        self.entered.set()
        assert self.opened.wait(5)
        if self.fail is not None:
            raise self.fail
        return self.inner(state)


async def until(condition, timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("timed out")


def test_a_checkpoint_in_a_thread_writes_what_checkpoint_writes_while_the_loop_goes_on():
    async def run():
        gate, ticks = Gate(), []
        table = ChangelogTable()
        states = CheckpointedStates(table, "tally", new=Tally, dump=gate, load=load, progress=lambda t: t.n, every=3)
        states.get(0).n = 3
        states.advance(0, 41)
        assert states.due(0)
        checkpointing = asyncio.ensure_future(states.checkpoint_in_thread(0))

        async def tick():
            while not gate.opened.is_set():
                ticks.append(1)
                await asyncio.sleep(0.001)
        ticking = asyncio.ensure_future(tick())
        await until(gate.entered.is_set)
        await until(lambda: len(ticks) >= 5)  # the event loop runs while the state is pickled
        assert table.written == [] and not states.due(0)
        with pytest.raises(RuntimeError, match="partition 0: the tally is being checkpointed in a thread"):
            states.get(0)
        with pytest.raises(RuntimeError, match=r"partitions \[0\] are being checkpointed: settle\(\) them first"):
            states.checkpoint_and_forget([0])
        with pytest.raises(RuntimeError, match="already being checkpointed"):
            await states.checkpoint_in_thread(0)
        ready = asyncio.ensure_future(states.ready(0, 42))
        await asyncio.sleep(0.02)
        assert not ready.done()  # the state is not given out until its checkpoint is written
        gate.opened.set()
        await checkpointing
        await ticking
        assert (await ready).n == 3
        return table.written, gate.threads, states.checkpointed_at

    written, threads, checkpointed_at = asyncio.run(run())
    assert threads != [threading.main_thread().name]
    assert written == [(0, b"0", envelope(41, dump(Tally(3))))] and checkpointed_at == {0: 3}


def test_settle_waits_for_a_checkpoint_in_a_thread_then_forgetting_writes_nothing_twice():
    async def run():
        gate, table = Gate(), ChangelogTable()
        states = CheckpointedStates(table, "tally", new=Tally, dump=gate, load=load, progress=lambda t: t.n, every=3)
        states.get(0).n = 3
        states.get(1).n = 1
        checkpointing = asyncio.ensure_future(states.checkpoint_in_thread(0))
        await until(gate.entered.is_set)
        settling = asyncio.ensure_future(states.settle([0, 1]))
        await asyncio.sleep(0.02)
        assert not settling.done()
        gate.opened.set()
        await settling
        assert checkpointing.done()
        states.checkpoint_and_forget([0, 1])
        return [(p, load(v).n) for p, _, v in table.written], states.partitions()

    assert asyncio.run(run()) == ([(0, 3), (1, 1)], [])  # 0 once (nothing new since), then 1


def test_a_failed_checkpoint_in_a_thread_raises_to_its_caller_and_the_next_one_can_run():
    async def run():
        gate, table = Gate(fail=OSError("disk gone")), ChangelogTable()
        states = CheckpointedStates(table, "tally", new=Tally, dump=gate, load=load, progress=lambda t: t.n, every=3)
        states.get(0).n = 3
        gate.opened.set()
        with pytest.raises(OSError, match="disk gone"):
            await states.checkpoint_in_thread(0)
        assert table.written == [] and states.due(0) and states.get(0).n == 3
        gate.fail = None
        await states.checkpoint_in_thread(0)
        return [(p, load(v).n) for p, _, v in table.written]

    assert asyncio.run(run()) == [(0, 3)]


def test_a_caller_cancelled_during_a_checkpoint_in_a_thread_leaves_the_state_busy_until_the_thread_ends():
    """On shutdown the task that awaits a checkpoint may be cancelled; the thread goes on pickling
    the state, so settle waits for it, and the checkpoint written then is the only one."""
    async def run():
        gate, table = Gate(), ChangelogTable()
        states = CheckpointedStates(table, "tally", new=Tally, dump=gate, load=load, progress=lambda t: t.n, every=3)
        states.get(0).n = 3
        checkpointing = asyncio.ensure_future(states.checkpoint_in_thread(0))
        await until(gate.entered.is_set)
        checkpointing.cancel()
        await asyncio.wait([checkpointing])
        with pytest.raises(RuntimeError, match="being checkpointed"):
            states.get(0)
        settling = asyncio.ensure_future(states.settle([0]))
        await asyncio.sleep(0.02)
        assert not settling.done()
        gate.opened.set()
        await settling
        states.checkpoint_and_forget([0])
        return checkpointing.cancelled(), [(p, load(v).n) for p, _, v in table.written], states.partitions()

    assert asyncio.run(run()) == (True, [(0, 3)], [])
