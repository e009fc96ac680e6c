"""Reading a stretch back: it streams, and a read that stops short of its end is logged and counted."""
from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import aiokafka
import pytest

from app import metrics
from app.state import read_back as read_back_module
from app.state.read_back import read_back


class FakeConsumer:
    """The part of aiokafka's consumer :func:`read_back` uses, over a partition holding ``offsets``
    (a seek to an offset before the first one starts at the first, as ``auto_offset_reset="earliest"``
    does); each ``getmany`` hands out at most ``max_records`` of them."""

    offsets: list[int] = []
    batches: list[int] = []

    def __init__(self, **kwargs) -> None:
        self.position = 0
        self.stopped = False

    async def start(self) -> None:
        pass

    def assign(self, partitions) -> None:
        pass

    def seek(self, tp, offset: int) -> None:
        self.position = max(offset, self.offsets[0] if self.offsets else 0)

    async def getmany(self, tp, timeout_ms: int, max_records: int):
        records = [SimpleNamespace(offset=o, key=b"k", value=str(o).encode()) for o in self.offsets
                   if o >= self.position][:max_records]
        if records:
            self.position = records[-1].offset + 1
        FakeConsumer.batches.append(len(records))
        return {tp: records}

    async def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def consumer(monkeypatch):
    monkeypatch.setattr(aiokafka, "AIOKafkaConsumer", FakeConsumer)
    FakeConsumer.batches = []
    return FakeConsumer


def short_count(topic: str, partition: int) -> float:
    return metrics.REGISTRY.get_sample_value("fraud_read_back_short_total", {"topic": topic, "partition": str(partition)}) or 0.0


def read(topic: str, start: int, end: int, take: int | None = None) -> list[int]:
    async def run():
        out = []
        async for _, value, offset in read_back(topic, 3, start, end, lambda b: int(b.decode()), idle_s=0.01):
            assert value == offset
            out.append(offset)
            if take is not None and len(out) >= take:
                break
        return out

    return asyncio.run(run())


def test_a_whole_stretch_is_read_in_bounded_batches_without_a_warning(consumer, caplog):
    consumer.offsets = list(range(0, 5000))
    before = short_count("t-whole", 3)
    with caplog.at_level(logging.WARNING, logger=read_back_module.__name__):
        assert read("t-whole", 100, 4100) == list(range(100, 4100))
    assert max(consumer.batches) <= 1000
    assert short_count("t-whole", 3) == before and not caplog.records


@pytest.mark.parametrize("case, offsets, what_read", [
    ("compacted end", [*range(100, 140), *range(150, 200)], "offsets 100-139"),  # 140..149 compacted away
    ("idle timeout", list(range(100, 130)), "offsets 100-129"),  # the messages stop coming before the end
    ("deleted start", list(range(120, 200)), "offsets 120-149"),  # retention deleted 100..119
    ("deleted stretch", list(range(160, 200)), "nothing"),  # all of it deleted
])
def test_a_read_that_does_not_cover_its_stretch_is_logged_and_counted(consumer, caplog, case, offsets, what_read):
    consumer.offsets = offsets
    topic = f"t-{case.replace(' ', '-')}"
    before = short_count(topic, 3)
    with caplog.at_level(logging.WARNING, logger=read_back_module.__name__):
        got = read(topic, 100, 150)
    assert got == [o for o in offsets if 100 <= o < 150 and (case != "compacted end" or o < 140)]
    assert short_count(topic, 3) == before + 1
    warning, = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert topic in warning.getMessage() and "partition 3" in warning.getMessage()
    assert "aimed for offsets 100-149" in warning.getMessage()
    assert f"read {what_read} " in warning.getMessage()


def test_a_caller_that_stops_reading_early_is_not_a_short_read(consumer, caplog):
    consumer.offsets = list(range(0, 500))
    before = short_count("t-early", 3)
    with caplog.at_level(logging.WARNING, logger=read_back_module.__name__):
        assert read("t-early", 0, 500, take=10) == list(range(10))
    assert short_count("t-early", 3) == before and not caplog.records
