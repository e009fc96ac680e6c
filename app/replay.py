"""Replay a dataset onto the ``transactions`` topic as Avro, in file order.

    python -m app.replay --rows 20000                      # the real ULB file, flat out
    python -m app.replay --source synthetic --rows 5000 --rate 500
    python -m app.replay --rows 20000 --labels delayed --label-delay-events 1000
    python -m app.replay --source simulator --labels delayed      # labels 7 simulated days late
    python -m app.replay --source simulator --labels delayed --labels-after-scores   # ... once the service scored up to then

The dataset's ``Time`` (seconds from the first row) becomes the event time, counted from
``--time-base`` (default: the moment the replay starts); the Handbook's simulator
(``--source simulator``, see :mod:`app.data.simulator`) gives each row its simulated time instead
(from 2018-04-01). With ``--labels delayed`` the transactions go out without ``Class`` and each
label follows on ``labels`` after the chosen number of events, seconds, or days of event time
(``--label-delay-days``: the label goes out once a transaction that much later in event time has
been sent; 7 days by default for the simulator, the Handbook's feedback delay). With
``--labels-after-scores`` such a label waits, besides, until the service has scored that
transaction (its score on the scores topic, :mod:`app.label_gate`): a replay faster than the
service then still gives the scorer each label after the transactions before its due time, as a
service that learns labels that late would see them.

Keys: a transaction is keyed by its card id when it has one (the simulator's rows), else by its
transaction id, and its label by the same key: a card's transactions meet in one partition (its
window features live there) and each label reaches its transaction's partition (see
:func:`message_key` and docs/architecture.md, "Keys").
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import sys
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping

from aiokafka import AIOKafkaProducer

import settings
from app.admin import bootstrap_servers, ensure_topics
from app.security import kafka_client_options
from app.records import Label, Transaction
from app.records.transaction import V_NAMES
from app.serialization import ConfluentAvroCodec, SchemaRefused, make_registry_client

LABEL_MODES = ("in-event", "delayed", "none")
#: The Handbook's feedback delay: a simulated transaction's label is known a week later.
DEFAULT_LABEL_DELAY_DAYS = 7.0


@dataclass
class ReplayStats:
    transactions: int = 0
    labels: int = 0
    frauds: int = 0
    elapsed_s: float = 0.0
    first_id: str | None = None
    last_id: str | None = None
    ids: list[str] = field(default_factory=list, repr=False)

    @property
    def events_per_s(self) -> float:
        return self.transactions / self.elapsed_s if self.elapsed_s > 0 else 0.0


def transaction_id(prefix: str, index: int) -> str:
    """The id of the ``index``-th replayed row.

    >>> transaction_id("tx", 42)
    'tx-000000042'
    """
    return f"{prefix}-{index:09d}"


def message_key(value: Mapping) -> bytes:
    """The Kafka key of a transaction value, and of its label: its card id when it has one, else
    its transaction id.

    >>> message_key({"transaction_id": "tx-1", "card_id": "cust-7"}), message_key({"transaction_id": "tx-2"})
    (b'cust-7', b'tx-2')
    """
    return (value.get("card_id") or value["transaction_id"]).encode()


def to_transaction(row: Mapping, tid: str, time_base: float, with_label: bool) -> dict:
    """A dataset row as a ``Transaction`` value (a dict the codec can write).

    The event time is the row's ``event_time`` when it has one (the simulator's), else
    ``time_base + Time``. ``V1``..``V28`` absent from the row (the simulator has none) are 0.0;
    ``Class`` and ``fraud_scenario`` are sent only ``with_label``.
    """
    value = {name: float(row.get(name, 0.0)) for name in V_NAMES}
    value["Amount"] = float(row["Amount"])
    value["transaction_id"] = tid
    value["event_time"] = float(row["event_time"]) if "event_time" in row else time_base + float(row["Time"])
    label = row.get("Class")
    value["Class"] = int(label) if with_label and label is not None and label != "" else None
    value["card_id"] = row.get("card_id") or None
    value["merchant_id"] = row.get("merchant_id") or None
    value["terminal_id"] = row.get("terminal_id") or None
    scenario = row.get("fraud_scenario")
    value["fraud_scenario"] = int(scenario) if with_label and scenario is not None and scenario != "" else None
    return value


async def replay(
    rows: Iterable[Mapping],
    *,
    broker: str = settings.KAFKA_BROKER,
    registry_url: str = settings.SCHEMA_REGISTRY_URL,
    transactions_topic: str = settings.TRANSACTIONS_TOPIC,
    labels_topic: str = settings.LABELS_TOPIC,
    rate: float = 0.0,
    labels: str = "in-event",
    label_delay_events: int = 0,
    label_delay_s: float = 0.0,
    label_delay_event_s: float = 0.0,
    time_base: float | None = None,
    id_prefix: str = "tx",
    start_index: int = 0,
    total: int | None = None,
    progress: bool = True,
    keep_ids: bool = False,
    linger_ms: int = 5,
    labels_after_scores: str | None = None,
    scores_lead: int = 0,
    scores_idle_s: float = 300.0,
) -> ReplayStats:
    """Send ``rows`` and return what was sent. ``rate`` is events per second (0 = flat out).

    With ``labels="delayed"`` each label waits for ``label_delay_events`` later transactions if
    that is set, else for ``label_delay_event_s`` seconds of event time if that is set (rows in
    event-time order: it goes out right after the first transaction at least that much later, with
    ``label_time`` = its transaction's event time + the delay), else for ``label_delay_s`` seconds
    of wall-clock time. Labels still waiting when the rows end are sent then.

    ``labels_after_scores`` (a scores topic; labels delayed in event time only): each label due
    after a transaction is held until that transaction's score is on the topic, those due after
    the last transaction until every transaction sent is scored (:class:`app.label_gate.LabelGate`);
    the replay returns once all are sent, or raises ``TimeoutError`` when no score has come for
    ``scores_idle_s`` while labels wait. ``scores_lead`` (with ``labels_after_scores``; 0: no bound):
    at most this many transactions sent and not yet scored, so that the service's consumer does
    not hold thousands of transactions in front of the labels (a label released after its
    transaction is then learned about ``scores_lead`` transactions later, not a buffer later).
    """
    if labels not in LABEL_MODES:
        raise ValueError(f"labels must be one of {LABEL_MODES}, got {labels!r}")
    if labels_after_scores and not (labels == "delayed" and label_delay_event_s and not label_delay_events):
        raise ValueError("labels_after_scores needs labels delayed in event time (label_delay_event_s)")
    client = make_registry_client(registry_url)
    tx_codec = ConfluentAvroCodec(client, transactions_topic, Transaction.avro_schema_to_python())
    label_codec = ConfluentAvroCodec(client, labels_topic, Label.avro_schema_to_python())
    tx_codec.schema_id, label_codec.schema_id  # register both before the first send: fail early
    base = time.time() if time_base is None else time_base
    topics = [transactions_topic, labels_topic] + ([labels_after_scores] if labels_after_scores else [])
    await ensure_topics(broker, topics, settings.TOPIC_PARTITIONS, settings.TOPIC_REPLICAS)
    gate = None
    if labels_after_scores:
        from app.records import Score

        gate = _ScoresWatch(broker, labels_after_scores,
                            ConfluentAvroCodec(client, labels_after_scores, Score.avro_schema_to_python()).loads)
        await gate.start()  # from the topic's end: the scores of this replay only

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker), linger_ms=linger_ms, acks="all",
                                **kafka_client_options(settings))
    await producer.start()
    stats = ReplayStats()
    pending: collections.deque[tuple[float, str, int, float, bytes]] = collections.deque()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="tx", desc="replay", file=sys.stderr, mininterval=0.5)
    futures: list[asyncio.Future] = []
    started = time.perf_counter()

    def due(sent_at: float, event_time: float, now_event_time: float) -> bool:
        if label_delay_events:
            return len(pending) > label_delay_events
        if label_delay_event_s:
            return now_event_time - event_time >= label_delay_event_s
        return time.perf_counter() - sent_at >= label_delay_s

    async def due_label(due_tid: str | None, *label_args) -> None:
        if gate is None:
            await send_label(*label_args)
        elif due_tid is None:
            gate.labels.hold_to_end(label_args)
        else:
            for args in gate.labels.hold(due_tid, label_args):
                await send_label(*args)

    async def send_label(tid: str, label: int, event_time: float, key: bytes) -> None:
        label_time = event_time + label_delay_event_s if label_delay_event_s and not label_delay_events else time.time()
        value = label_codec.dumps({"transaction_id": tid, "label": label, "event_time": event_time, "label_time": label_time})
        futures.append(await producer.send(labels_topic, value=value, key=key))
        stats.labels += 1
        if len(futures) >= 5000:
            await asyncio.gather(*futures)
            futures.clear()

    try:
        for offset, row in enumerate(rows):
            index = start_index + offset
            tid = transaction_id(id_prefix, index)
            value = to_transaction(row, tid, base, with_label=(labels == "in-event"))
            key = message_key(value)
            futures.append(await producer.send(transactions_topic, value=tx_codec.dumps(value), key=key))
            stats.transactions += 1
            stats.frauds += int(row.get("Class") or 0)
            stats.first_id = stats.first_id or tid
            stats.last_id = tid
            if keep_ids:
                stats.ids.append(tid)
            if labels == "delayed":
                pending.append((time.perf_counter(), tid, int(row["Class"]), value["event_time"], key))
                while pending and due(pending[0][0], pending[0][3], value["event_time"]):
                    _, ltid, label, etime, lkey = pending.popleft()
                    await due_label(tid, ltid, label, etime, lkey)
            if gate is not None:
                for args in gate.take_released():
                    await send_label(*args)
                while scores_lead and stats.transactions - gate.labels.scored_count > scores_lead:
                    gate.check(scores_idle_s)
                    await asyncio.sleep(0.002)
                    for args in gate.take_released():
                        await send_label(*args)
            if len(futures) >= 5000:
                await asyncio.gather(*futures)
                futures.clear()
            if bar is not None and stats.transactions % 200 == 0:
                bar.update(200)
            if rate > 0:
                ahead = stats.transactions / rate - (time.perf_counter() - started)
                if ahead > 0.002:
                    await asyncio.sleep(ahead)
        while pending:  # the stream is over: the late labels still arrive
            if label_delay_s and not (label_delay_events or label_delay_event_s):
                wait = label_delay_s - (time.perf_counter() - pending[0][0])
                if wait > 0:
                    await asyncio.sleep(wait)
            _, ltid, label, etime, lkey = pending.popleft()
            await due_label(None, ltid, label, etime, lkey)
        if gate is not None:
            gate.released.extend(gate.labels.end(stats.transactions))
            await gate.send_released(send_label, scores_idle_s)
        await asyncio.gather(*futures)
        await producer.flush()
    finally:
        await producer.stop()
        if gate is not None:
            await gate.stop()
        if bar is not None:
            bar.update(stats.transactions % 200)
            bar.close()
    stats.elapsed_s = time.perf_counter() - started
    return stats


class _ScoresWatch:
    """Reads a scores topic from its end in the background and feeds each score's transaction id to
    a :class:`~app.label_gate.LabelGate`; the labels it releases wait in :meth:`take_released`."""

    def __init__(self, broker: str, topic: str, decode) -> None:
        from aiokafka import AIOKafkaConsumer

        from app.label_gate import LabelGate

        self.topic, self.decode = topic, decode
        self.labels = LabelGate()
        self.released: list = []
        self.last_score = time.monotonic()
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker), enable_auto_commit=False,
                                         group_id=None, **kafka_client_options(settings))
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        from app.admin import topic_partitions

        await self.consumer.start()
        tps = await topic_partitions(self.consumer, self.topic, timeout_s=30.0)
        if not tps:
            await self.consumer.stop()
            raise ConnectionError(f"the scores topic {self.topic!r} has no partitions")
        self.consumer.assign(tps)
        await self.consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the end offsets now: a score written from here on is read
            await self.consumer.position(tp)
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batch.values():
                for record in records:
                    self.released.extend(self.labels.scored(self.decode(record.value)["transaction_id"]))
                self.last_score = time.monotonic()

    def take_released(self) -> list:
        released, self.released = self.released, []
        return released

    async def send_released(self, send, idle_s: float) -> None:
        """Send the labels released from here on until none waits; ``TimeoutError`` after ``idle_s``
        without a new score while some wait."""
        while True:
            for args in self.take_released():
                await send(*args)
            if not self.labels.waiting:
                return
            self.check(idle_s)
            await asyncio.sleep(0.05)

    def check(self, idle_s: float) -> None:
        """Raise the reader's error, or ``TimeoutError`` when no score has come for ``idle_s``."""
        if self.task is not None and self.task.done():
            self.task.result()
        if time.monotonic() - self.last_score > idle_s:
            raise TimeoutError(f"no score on {self.topic!r} for {idle_s:.0f}s: {self.labels.scored_count:,} "
                               f"transactions scored, {self.labels.waiting:,} labels held")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping; send_released raised it already
                pass
        await self.consumer.stop()


def dataset_rows(source: str, rows: int | None, skip: int = 0, seed: int = 0, simulator: str = "published",
                 **synthetic) -> Iterator[Mapping]:
    """Rows from ``ulb`` (the real file, fetched and verified on first use), ``synthetic``,
    ``simulator`` (the Handbook's simulator in configuration ``simulator``, cached) or a CSV path."""
    if source == "simulator":
        from app.data.simulator import CONFIGS, load

        sim = load(CONFIGS[simulator], seed)
        return sim.rows(skip, None if rows is None else skip + rows)
    if source == "synthetic":
        from app.data.synthetic import generate

        n = (rows or 10_000) + skip
        return iter(generate(n, seed=seed, **synthetic)[skip:])
    from app.data.ulb import ensure_creditcard_csv, iter_rows

    path = ensure_creditcard_csv(None if source == "ulb" else source)
    it = iter_rows(path, limit=None if rows is None else rows + skip)
    return itertools.islice(it, skip, None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.replay", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default="ulb", help="ulb (default), synthetic, simulator, or a path to a creditcard.csv")
    p.add_argument("--rows", type=int, default=None, help="how many rows (default: all; synthetic: 10000)")
    p.add_argument("--skip", type=int, default=0, help="start after this many rows")
    p.add_argument("--rate", type=float, default=0.0, help="events per second (0 = flat out)")
    p.add_argument("--labels", choices=LABEL_MODES, default="in-event")
    p.add_argument("--label-delay-events", type=int, default=0, help="with --labels delayed: send each label N events later")
    p.add_argument("--label-delay-s", type=float, default=0.0, help="with --labels delayed: send each label S seconds later")
    p.add_argument("--label-delay-days", type=float, default=None,
                   help="with --labels delayed: send each label after the first transaction D days later in event "
                        "time (default: 7 for --source simulator unless another delay is given, else 0)")
    p.add_argument("--labels-after-scores", action="store_true",
                   help="with --labels delayed in event time: hold each label until the service has scored the "
                        "transaction that made it due (read from the scores topic), so a replay faster than the "
                        "service keeps the labels' delay")
    p.add_argument("--scores-lead", type=int, default=1000,
                   help="with --labels-after-scores: at most this many transactions sent ahead of their scores "
                        "(default 1000; 0: no bound)")
    p.add_argument("--time-base", type=float, default=None, help="epoch seconds of the dataset's Time 0 (default: now)")
    p.add_argument("--id-prefix", default="tx")
    p.add_argument("--seed", type=int, default=0, help="synthetic and simulator: the seed")
    p.add_argument("--simulator", choices=["published", "small"], default="published",
                   help="simulator: the published configuration (~1.75M rows) or a small one (~55k rows)")
    p.add_argument("--velocity-fraud", action="store_true", help="synthetic: fraud that shows only in per-card velocity")
    p.add_argument("--drift-at", default="", help="synthetic: comma-separated row indices of concept changes")
    p.add_argument("--broker", default=settings.KAFKA_BROKER)
    p.add_argument("--registry", default=settings.SCHEMA_REGISTRY_URL)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    synthetic = {}
    if args.source == "synthetic":
        synthetic = {"velocity_fraud": args.velocity_fraud,
                     "drift_at": [int(x) for x in args.drift_at.split(",") if x.strip()]}
    delay_days = args.label_delay_days
    if delay_days is None:
        other_delay = args.label_delay_events or args.label_delay_s
        delay_days = DEFAULT_LABEL_DELAY_DAYS if args.source == "simulator" and not other_delay else 0.0
    rows = dataset_rows(args.source, args.rows, args.skip, seed=args.seed, simulator=args.simulator, **synthetic)
    try:
        stats = asyncio.run(replay(
            rows, broker=args.broker, registry_url=args.registry, rate=args.rate, labels=args.labels,
            label_delay_events=args.label_delay_events, label_delay_s=args.label_delay_s,
            label_delay_event_s=delay_days * 86_400.0,
            time_base=args.time_base, id_prefix=args.id_prefix, start_index=args.skip, total=args.rows,
            progress=not args.no_progress, labels_after_scores=settings.SCORES_TOPIC if args.labels_after_scores else None,
            scores_lead=args.scores_lead,
        ))
    except (ConnectionError, SchemaRefused, TimeoutError, ValueError) as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    print(f"replay: sent {stats.transactions} transactions ({stats.frauds} fraud) and {stats.labels} labels "
          f"in {stats.elapsed_s:.1f}s ({stats.events_per_s:.0f} ev/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
