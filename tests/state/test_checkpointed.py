"""Per-partition state checkpointed to a changelog table: restore, pace, revocation, bad blobs."""
from __future__ import annotations

import pickle

import pytest

from app.learning.learner import CheckpointError
from app.state.checkpointed import CheckpointedStates
from tests.fakes import ChangelogTable


class Tally:
    def __init__(self, n: int = 0) -> None:
        self.n = n


def load(blob: bytes) -> Tally:
    if not blob.startswith(b"T"):
        raise CheckpointError("not a tally")
    return Tally(pickle.loads(blob[1:]))


def tallies(table: ChangelogTable, every: int = 10, **kwargs) -> CheckpointedStates[Tally]:
    return CheckpointedStates(table, "tally", new=Tally, dump=lambda t: b"T" + pickle.dumps(t.n), load=load,
                              progress=lambda t: t.n, every=every, **kwargs)


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
    table.data.update({k: v for _, k, v in table.written})  # what recovery of the changelog gives back
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
