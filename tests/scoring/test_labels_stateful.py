"""Labels and transactions interleaved with extreme times, values and keys (Hypothesis stateful):
every label whose transaction is waiting is learned exactly once, a label that comes before its
transaction (however far ahead) is parked and learned exactly once when that transaction is scored
(unless it expired from the park first), nothing else is learned, and label learning never stalls
(each step's waits are bounded)."""
from __future__ import annotations

import asyncio
import math
import time

import hypothesis.strategies as st
from hypothesis import settings as hsettings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import settings
from app import configured
from app.learning.model_host import LocalHost
from app.records import Transaction
from app.scoring import Item, Scorer
from app.serialization.avro import validate_label
from tests.fakes import ChangelogTable

BASE = 1.7e9
IDS = [f"tx-{i}" for i in range(12)] + ["ghost-1", "ghost-2"]
SKEW_S = 30 * 24 * 3600.0
TTL_S = 7 * 24 * 3600.0  # the scorer's default: a transaction this much older than the latest expires
WAIT_S = 0.05  # the bounds of a label's wait, small so that the machine runs fast
PARKED_MAX = 4  # small, so that the count bound of the parked labels is reached


async def local_host():
    return LocalHost()


def transaction(tx_id: str, event_time: float) -> Transaction:
    return Transaction(transaction_id=tx_id, event_time=event_time, Amount=10.0,
                       **{f"V{i}": 0.1 * i for i in range(1, 29)})


class LabelsAndTransactions(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.scorer = Scorer(local_host, ChangelogTable(), ChangelogTable(),
                             model_factory=configured.model_factory(settings, kind="lr"), record=Transaction,
                             label_wait_idle_s=WAIT_S, max_event_time_skew_s=SKEW_S, parked_max=PARKED_MAX)
        self.offsets = {"transactions": 0, "labels": 0}
        self.clock = BASE
        self.sent: set[str] = set()
        self.waiting: set[str] = set()  # scored without a label, label not learned yet
        self.learned: dict[str, int] = {}
        self.watermark = -math.inf
        self.times: dict[str, float] = {}
        self.arrivals: list[str] = []
        self.parked: dict[str, float] = {}  # parked labels (their event time), earliest parked first
        self.expired: set[str] = set()  # expired from the pending table

    def teardown(self) -> None:
        self.loop.close()

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    @rule(tx_id=st.sampled_from(IDS[:12]), when=st.sampled_from(["next", "same", "past", "far-future", "far-past"]))
    def a_transaction(self, tx_id, when):
        if tx_id in self.sent:  # ids are unique on the stream
            return
        self.clock += {"next": 60.0, "same": 0.0, "past": -3600.0, "far-future": 1e9, "far-past": -1e9}[when]
        event_time = self.clock
        if when in ("far-future", "far-past"):
            self.clock -= {"far-future": 1e9, "far-past": -1e9}[when]  # the stream's own time goes on as before
        offset = self.offsets["transactions"]
        self.offsets["transactions"] += 1
        item = Item(transaction(tx_id, event_time), tx_id.encode(), 0, offset)

        async def score():
            chunks = await self.scorer.submit([item])
            return [result async for chunk in self.scorer.scored(chunks) for _, result in chunk]

        result, = self.run(score())
        self.scorer.after_batch({0})
        self.sent.add(tx_id)
        state = self.scorer.partitions[0]
        self.watermark = max(self.watermark, event_time) if isinstance(result, dict) else self.watermark
        if isinstance(result, dict) and tx_id in self.parked:  # its label came first: learned now, once
            del self.parked[tx_id]
            self.learned[tx_id] = self.learned.get(tx_id, 0) + 1
        elif isinstance(result, dict):
            self.waiting.add(tx_id)
            self.arrivals.append(tx_id)
            self.times[tx_id] = event_time
        # after each batch the pending index expires in arrival order: the oldest, while too old
        while self.arrivals and (self.arrivals[0] not in self.waiting
                                 or self.times[self.arrivals[0]] < self.watermark - TTL_S):
            gone = self.arrivals.pop(0)
            if gone in self.waiting:
                self.waiting.discard(gone)
                self.expired.add(gone)
        # ...then the parked labels: the earliest parked beyond the count bound, and the too old
        while len(self.parked) > PARKED_MAX:
            del self.parked[next(iter(self.parked))]
        for parked_id, parked_time in list(self.parked.items()):
            if parked_time < self.watermark - TTL_S:
                del self.parked[parked_id]
        if isinstance(result, dict):
            assert (tx_id.encode() in state.pending) == (tx_id in self.waiting)
        else:  # refused: too far ahead (of the wall clock here: 1e9 s)
            assert when == "far-future" and "MAX_EVENT_TIME_SKEW_S" in str(result), repr(result)

    @rule(tx_id=st.sampled_from(IDS), value=st.sampled_from([0, 1, 7, -1]),
          when=st.sampled_from(["its-time", "nan", "far-future", "far-past", "inf"]))
    def a_label(self, tx_id, value, when):
        event_time = {"its-time": self.clock, "nan": math.nan, "far-future": 1e15, "far-past": -1e15,
                      "inf": math.inf}[when]
        record = {"transaction_id": tx_id, "label": value, "event_time": event_time}
        try:
            validate_label(record)  # what the labels topic's codec does: a refused one is a dead letter
        except ValueError:
            assert value not in (0, 1) or not math.isfinite(event_time)
            return
        offset = self.offsets["labels"]
        self.offsets["labels"] += 1

        async def learn():
            started = time.monotonic()
            await self.scorer.wait_for_transaction(0, tx_id.encode(), event_time, deadline=started + WAIT_S)
            assert time.monotonic() - started < WAIT_S + 1.0  # never stalls
            outcome, op = await self.scorer.plan_label(tx_id.encode(), value, 0, offset, event_time=event_time)
            assert await self.scorer.learn([(0, op, None)] if op else []) == []
            return outcome

        outcome = self.run(learn())
        if tx_id in self.waiting:
            assert outcome == "learned"
            self.waiting.discard(tx_id)
            self.learned[tx_id] = self.learned.get(tx_id, 0) + 1
        elif tx_id in self.expired:
            assert outcome == "expired"
        elif event_time >= self.watermark - TTL_S:  # its transaction may still come: parked (again)
            assert outcome == "parked"
            self.parked.pop(tx_id, None)
            self.parked[tx_id] = event_time
        else:  # it would be expired already
            assert outcome == "unknown"

    @invariant()
    def each_label_learned_at_most_once(self):
        assert all(count == 1 for count in self.learned.values())
        state = self.scorer.partitions.get(0)
        if state is not None:
            assert state.learner.events_learned == len(self.learned)
            assert {key.decode() for key in state.pending._ids} == self.waiting
            assert {key.decode() for key in state.parked._ids} == set(self.parked)


LabelsAndTransactions.TestCase.settings = hsettings(max_examples=60, stateful_step_count=30, deadline=None)
test_labels_and_transactions = LabelsAndTransactions.TestCase
