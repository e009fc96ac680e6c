"""The event-time alignment of a worker's partitions: which it pauses, and which hold the others back."""
from __future__ import annotations

import pytest

from app.scoring.alignment import EventTimeAlignment


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def aligned(clock=None, skew=60.0, idle=5.0) -> EventTimeAlignment:
    return EventTimeAlignment(max_skew_s=skew, idle_s=idle, clock=clock or Clock())


def more_to_read(p: int) -> int:
    return 10_000


def test_a_partition_more_than_the_skew_ahead_of_the_slowest_is_paused_until_the_slowest_catches_up():
    align = aligned()
    align.observe(0, 1000.0, 5)
    align.observe(1, 1050.0, 5)  # within the skew
    align.observe(2, 1061.0, 5)  # 61 s ahead
    assert align.to_pause({0, 1, 2}, more_to_read) == {2}
    assert align.skew == 61.0
    align.observe(0, 1002.0, 6)
    assert align.to_pause({0, 1, 2}, more_to_read) == set()  # resumed: 59 s ahead now


def test_step_by_step_the_slowest_moves_and_the_paused_set_follows():
    align = aligned(skew=10.0)
    steps = [  # (partition, event time, offset) taken, then the partitions paused
        ((0, 100.0, 0), {0}),  # 1 and 2 have given nothing yet: their first events may be older
        ((1, 105.0, 0), {0, 1}),
        ((2, 130.0, 0), {2}),
        ((0, 112.0, 1), {2}),  # now 1 is the slowest (105): 2 is 25 s ahead, 0 only 7
        ((1, 121.0, 1), {2}),  # slowest 112 (0): 2 is still 18 s ahead
        ((0, 125.0, 2), set()),  # slowest 121 (1): 2 is 9 s ahead
        ((2, 140.0, 1), {2}),
    ]
    for (partition, event_time, offset), paused in steps:
        align.observe(partition, event_time, offset)
        got = align.to_pause({0, 1, 2}, more_to_read)
        if got != paused:
            pytest.fail(f"after {partition}@{event_time}: paused {got}, expected {paused}")


def test_a_partition_with_nothing_left_to_read_or_idle_holds_nothing_back():
    clock = Clock()
    align = aligned(clock)
    align.observe(0, 1000.0, 41)
    align.observe(1, 2000.0, 7)
    assert align.to_pause({0, 1}, more_to_read) == {1}
    assert align.to_pause({0, 1}, lambda p: 42 if p == 0 else 100) == set()  # 0 read up to its end
    clock.now = 5.0  # 0 has given nothing for idle_s
    align.observe(1, 2001.0, 8)
    assert align.to_pause({0, 1}, more_to_read) == set()
    align.observe(0, 1001.0, 42)  # it moves again
    assert align.to_pause({0, 1}, more_to_read) == {1}


def test_an_unknown_high_watermark_counts_as_more_to_read():
    align = aligned()
    align.observe(0, 0.0, 3)
    align.observe(1, 100.0, 3)
    assert align.to_pause({0, 1}, lambda p: None) == {1}


def test_only_assigned_partitions_count_and_revoked_ones_are_forgotten():
    align = aligned()
    align.observe(0, 0.0, 1)
    align.observe(1, 500.0, 1)
    assert align.to_pause({1}, more_to_read) == set()  # 0 is not this worker's
    assert align.to_pause({0, 1}, more_to_read) == {1}
    align.forget({0})
    assert align.to_pause({0, 1}, lambda p: 0 if p == 0 else 100) == set() and 0 not in align.event_time


def test_a_partition_that_gave_nothing_yet_holds_the_others_back_for_idle_s_unless_it_never_had_an_event():
    clock = Clock()
    align = aligned(clock)
    align.hold(1, 500.0, 1, "b")
    assert align.to_pause({1, 2}, more_to_read) == {1} and align.release(more_to_read, {1, 2}) == []
    assert align.release(lambda p: 0 if p == 2 else 100, {1, 2}) == ["b"]  # 2 is empty
    align.hold(1, 501.0, 2, "c")
    clock.now = 4.9
    assert align.release(more_to_read, {1, 2}) == []
    clock.now = 5.0  # 2 was first seen assigned at 0: it no longer holds anything back
    assert align.to_pause({1, 2}, more_to_read) == set()
    assert align.release(more_to_read, {1, 2}) == ["c"]
    align.reset()  # a rebalance
    assert (align.held, align.event_time, align.assigned_at) == (0, {}, {})


def test_event_time_and_offset_only_go_forward():
    align = aligned()
    align.observe(0, 100.0, 9)
    align.observe(0, 90.0, 8)  # an older event (out of order within the partition)
    assert (align.event_time[0], align.offset[0]) == (100.0, 9)


@pytest.mark.parametrize("skew, idle", [(0.0, 5.0), (-1.0, 5.0), (60.0, 0.0)])
def test_it_needs_a_positive_skew_and_idle_time(skew, idle):
    with pytest.raises(ValueError, match="max_skew_s > 0 and idle_s > 0"):
        EventTimeAlignment(max_skew_s=skew, idle_s=idle)


def test_when_no_partition_can_move_everything_held_is_released_in_event_time_order():
    clock = Clock()
    align = aligned(clock)
    align.hold(0, 100.0, 0, "a")
    align.hold(1, 900.0, 0, "b")
    align.hold(1, 950.0, 1, "c")
    align.hold(2, 500.0, 0, "d")
    assert align.release(more_to_read) == ["a"]  # 2 (500) and 1 (950) are more than 60 s ahead of 0 (100)
    assert align.release(lambda p: 1 if p == 0 else 100) == ["d"]  # 0 has read all it has: 2 is the slowest
    clock.now = 10.0  # nothing given for idle_s: none can move
    assert align.release(more_to_read) == ["b", "c"] and align.held == 0
    assert align.release(more_to_read) == []


def test_a_worker_holds_what_runs_ahead_of_the_other_workers_partitions_as_the_learner_has_them():
    clock = Clock()
    align = aligned(clock)
    align.hold(0, 1000.0, 5, "a")
    align.hold(1, 1010.0, 5, "b")
    # nothing released beyond what the learner has of this worker's partitions (lag 0), and the
    # other worker's partition 2 is at 700: this worker goes up to 760
    align.learned({0: 900.0, 1: 905.0, 2: 700.0, 3: 950.0})
    assert align.release(more_to_read, {0, 1}) == []
    assert align.to_pause({0, 1}, more_to_read) == {0, 1}
    clock.now = 1.0
    align.learned({2: 945.0})  # it moves: the slowest of the others is at 945, this worker goes up to 1005
    assert align.release(more_to_read, {0, 1}) == ["a"]
    # now this worker has released 100 s beyond what the learner has of it: the other is placed at
    # 945 + 100, and "b" goes
    assert align.to_pause({0, 1}, more_to_read) == set()
    assert align.release(more_to_read, {0, 1}) == ["b"]
    align.hold(0, 2000.0, 6, "c")
    assert align.release(more_to_read, {0, 1}) == [] and align.to_pause({0, 1}, more_to_read) == {0}
    clock.now = 6.0  # the other worker's partitions moved last 5 s ago: they hold nothing back
    assert align.release(more_to_read, {0, 1}) == ["c"]


def test_without_learned_times_of_its_own_or_of_others_a_worker_only_aligns_its_own_partitions():
    align = aligned()
    align.hold(0, 1000.0, 5, "a")
    align.learned({1: 10.0})  # another worker's partition, but none of this worker's is learned yet
    assert align.release(more_to_read, {0}) == ["a"]
    align.hold(0, 1001.0, 6, "b")
    align.learned({0: 990.0})  # now this worker's too, and no other partition is
    assert align.release(more_to_read, {0, 1}) == []  # 1 is assigned here and has given nothing yet
    assert align.release(more_to_read, {0}) == []  # 1 (another worker's, at 10 + 11 + 60) holds it back


def test_another_workers_partition_the_learner_has_nothing_of_yet_holds_everything_back_for_idle_s():
    clock = Clock()
    align = aligned(clock)
    align.hold(0, 1000.0, 5, "a")
    align.learned({}, partitions=2)  # central learning, no example of partition 1 (another worker's) yet
    assert align.release(more_to_read, {0}) == [] and align.to_pause({0}, more_to_read) == {0}
    clock.now = 5.0  # nothing of it for idle_s: it holds nothing back (labels on the labels topic, say)
    assert align.release(more_to_read, {0}) == ["a"]
    align.reset()  # a rebalance: it is looked for again
    align.hold(0, 1001.0, 6, "b")
    assert align.release(more_to_read, {0}) == []
    align.learned({0: 1000.0, 1: 990.0})  # the learner has it: in step (990 + 1 behind + 60 >= 1001)
    assert align.release(more_to_read, {0}) == ["b"]


def test_another_workers_partition_is_placed_by_its_own_rate_of_events():
    """This worker's partition 0 is dense (1 event a second), the other worker's partition 1 sparse
    (1 every 10 s): once this worker has released 20 events of 0 beyond what the learner has, it
    places partition 1 twenty of its events (200 s) past its learned time, not 20 s."""
    clock = Clock()
    align = aligned(clock, skew=10.0)
    align.learned({0: 100.0, 1: 100.0}, partitions=2, offsets={0: 100, 1: 10})
    clock.now = 1.0
    align.learned({0: 200.0, 1: 200.0}, offsets={0: 200, 1: 20})  # rates: 1 and 0.1 events per second
    for offset in range(201, 221):
        align.hold(0, 200.0 + (offset - 200) * 0.1, offset, offset)
    assert align.release(more_to_read, {0}) == list(range(201, 221))  # nothing released beyond yet: up to 210
    align.hold(0, 405.0, 221, "far")
    align.hold(0, 425.0, 222, "farther")
    assert align.release(more_to_read, {0}) == ["far"]  # 20 released beyond: up to 200 + 20 / 0.1 + 10 = 410
    align.learned({1: 210.0}, offsets={1: 21})  # the sparse partition's next event
    assert align.release(more_to_read, {0}) == ["farther"]  # 21 beyond: 210 + 210 + 10 = 430


def test_the_lag_that_places_the_others_is_the_most_of_the_last_idle_s():
    """While this worker waits, the learner catches up with it and its lag shrinks; the other
    worker's does not, so its place is estimated with the larger lag until idle_s has passed."""
    clock = Clock()
    align = aligned(clock, skew=10.0)
    align.learned({0: 0.0, 1: 0.0}, partitions=2, offsets={0: 0, 1: 0})
    align.learned({0: 100.0, 1: 100.0}, offsets={0: 100, 1: 100})  # one event a second on both
    for offset in range(101, 151):
        align.hold(0, float(offset), offset, offset)
    assert len(align.release(more_to_read, {0})) == 10  # up to 100 + 0 + 10 (nothing released beyond yet)
    assert len(align.release(more_to_read, {0})) == 10  # 10 beyond: up to 120
    align.hold(0, 155.0, 151, "next")
    clock.now = 1.0
    align.learned({0: 120.0, 1: 101.0}, offsets={0: 120, 1: 101})  # the learner caught up with this worker
    assert align.release(more_to_read, {0}) == [121]  # the lag of late is 10: 101 + 10 + 10
    clock.now = 10.0
    align.learned({1: 102.0}, offsets={1: 102})
    assert align.release(more_to_read, {0}) == []  # the lag of late is 1 now: 102 + 1 + 10 = 113
