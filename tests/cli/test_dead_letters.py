"""``dead-letters replay`` on an in-memory cluster: the filters, the dry run, the counts."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from app.cli import dead_letters, main
from tests.cli.fakes import FakeCluster, context


def letter(reason: str, topic: str, offset: int, value: bytes | None = b"tx") -> dict:
    return {"reason": reason, "error": "...", "topic": topic, "partition": 0, "offset": offset,
            "processing_time": 0.0, "timestamp": None, "key": b"k%d" % offset, "value": value}


@pytest.fixture
def cluster(monkeypatch):
    """A dead-letters topic whose values are the letters themselves (the decoder is the identity;
    bytes do not decode)."""
    def loads(value):
        if not isinstance(value, dict):
            raise ValueError("bad-magic-byte")
        return value

    monkeypatch.setattr(dead_letters, "decoder", lambda context: loads)
    cluster = FakeCluster()
    cluster.add_topic("dead-letters")
    for item in (letter("registry-unavailable", "transactions", 10), letter("invalid-value", "transactions", 11),
                 letter("registry-unavailable", "labels", 12), b"not a dead letter",
                 letter("empty", "transactions", 13, value=None), letter("registry-unavailable", "transactions", 14)):
        cluster.append("dead-letters", 0, None, item)
    return cluster


def replay(cluster, *args):
    return CliRunner().invoke(main, ["dead-letters", "replay", *args], obj=context(cluster))


def test_replays_the_chosen_letters_to_their_original_topic_and_partition(cluster):
    result = replay(cluster, "--reason", "registry-unavailable", "--topic", "transactions")
    assert result.exit_code == 0, result.output
    assert cluster.sent == [("transactions", 0, b"k10", b"tx"), ("transactions", 0, b"k14", b"tx")]
    assert result.stdout.splitlines()[-1] == ("replayed 2 dead letters (of 6 read from dead-letters, 1 unreadable); "
                                              "read up to offset 5 of partition 0")
    assert "dead-letters[0]@3: it does not decode" in result.stderr


def test_dry_run_sends_nothing_and_says_what_it_would(cluster):
    result = replay(cluster, "--reason", "registry-unavailable", "--dry-run")
    assert result.exit_code == 0 and not cluster.sent
    lines = result.stdout.splitlines()
    assert lines[:3] == ["would send transactions[0]@10 reason=registry-unavailable key=k10 value=2 bytes",
                         "would send labels[0]@12 reason=registry-unavailable key=k12 value=2 bytes",
                         "would send transactions[0]@14 reason=registry-unavailable key=k14 value=2 bytes"]
    assert lines[-1].startswith("would replay 3 dead letters (of 6 read")


def test_limit_and_since_offset(cluster):
    result = replay(cluster, "--limit", "2")
    assert [m[2] for m in cluster.sent] == [b"k10", b"k11"]
    assert "replayed 2 dead letters (of 2 read" in result.stdout and "up to offset 1 of" in result.stdout
    cluster.sent.clear()
    result = replay(cluster, "--since-offset", "2")  # after the first run: the rest, without the empty one
    assert [m[2] for m in cluster.sent] == [b"k12", b"k14"]
    assert "replayed 2 dead letters (of 4 read" in result.stdout


def test_bad_options_are_refused(cluster):
    for args in (["--limit", "0"], ["--since-offset", "-1"], ["--limit", "x"]):
        result = replay(cluster, *args)
        assert result.exit_code == 2 and not cluster.sent, args
