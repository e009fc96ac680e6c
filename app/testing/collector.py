"""Read an output topic live: a :class:`Collector` consumes it from the beginning in a background
thread while a test or a fault scenario goes on; :func:`settle` waits until nothing new arrives."""
from __future__ import annotations

import asyncio
import math
import threading
import time
from typing import Any

from app.testing.kafka import decoder
from app.testing.stack import BROKER, REGISTRY
from app.testing.wait import wait_until


class Collector:
    """Reads a topic from the beginning in a background thread, decoding each value, until stopped.

    ``values`` grows as messages arrive (each a dict, plus ``_partition``, ``_offset`` and ``_key`` of
    the output message). Survives broker restarts (the client reconnects). A context manager: started
    on entry, stopped on exit.
    """

    def __init__(self, topic: str, record: type | None, broker: str = BROKER, registry: str = REGISTRY):
        self.topic, self.broker = topic, broker
        self.decode = decoder(record, registry) if record is not None else (lambda b: {"raw": b})
        self.values: list[dict] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"collect-{topic}", daemon=True)

    def start(self) -> "Collector":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def __enter__(self) -> "Collector":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def count(self) -> int:
        return len(self.values)

    def ids(self) -> set[str]:
        return {v.get("transaction_id") for v in list(self.values)}

    def covers(self, ids) -> bool:
        """Whether every one of ``ids`` has arrived (raises if reading the topic failed)."""
        if self.error is not None:
            raise RuntimeError(f"reading {self.topic} failed") from self.error
        return set(ids) <= self.ids()

    def _run(self) -> None:
        try:
            asyncio.run(self._consume())
        except BaseException as exc:  # noqa: BLE001 - reported through covers()
            self.error = exc

    async def _consume(self) -> None:
        from aiokafka import AIOKafkaConsumer

        import settings
        from app.admin import bootstrap_servers, topic_partitions
        from app.security import kafka_client_options

        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(self.broker), enable_auto_commit=False,
                                    auto_offset_reset="earliest", group_id=None, **kafka_client_options(settings))
        await consumer.start()
        try:
            tps = await topic_partitions(consumer, self.topic, math.inf, stop_if=self._stop.is_set)
            if not tps:
                return
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while not self._stop.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=5000)
                for records in batch.values():
                    for r in records:
                        value = self.decode(r.value) if r.value is not None else {}
                        self.values.append({**value, "_partition": r.partition, "_offset": r.offset,
                                            "_key": r.key})
        finally:
            await consumer.stop()


def settle(collector: Collector, quiet_s: float = 3.0, timeout_s: float = 30.0) -> None:
    """Until ``collector`` has seen nothing new for ``quiet_s`` (late duplicates get counted)."""
    last = [collector.count(), time.monotonic()]

    def quiet() -> bool:
        n = collector.count()
        if n != last[0]:
            last[:] = [n, time.monotonic()]
        return time.monotonic() - last[1] >= quiet_s

    wait_until(quiet, timeout_s, f"{collector.topic} still growing")
