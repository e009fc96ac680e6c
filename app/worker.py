"""The Faust application: ``faust -A app worker``.

This module makes the app object (:class:`FraudApp`, configured from :mod:`settings`) and hands it
to the composition step, :func:`app.service.build`, which builds the service's objects and
registers the enabled agents on it.
"""
from __future__ import annotations

import faust

import settings
from app.compat import faust as faust_mends
from app.compat.faust.fetch_tuning import tune
from app.security import faust_credentials
from app.service import build
from app.web import builtin_pages_off

# Faust's table recovery must not drop the messages fetched while it ends, nor its fetch loop the records
# it sets aside (a paused partition, a rebalance); and the worker's fetches wait as configured
faust_mends.install()

class FraudApp(faust.App):
    """The Faust app, which creates the service's topics (with the configured partitions) on start,
    so that a worker started before any producer still gets its partitions assigned, and refuses to
    start when transactions, labels and scores have different partition counts."""

    async def on_start(self) -> None:
        from app.admin import check_co_partitioned, ensure_topics, partition_counts

        await wait_for_registry()
        # Register the output schemas now, while the registry answers: a codec otherwise registers on
        # its first write, and a registry down by then would block the event loop while it retries.
        import asyncio

        from app.serialization.avro import register_schemas

        await asyncio.to_thread(register_schemas, [settings.SCORES_TOPIC, settings.ANOMALIES_TOPIC,
                                                   settings.DRIFT_ALERTS_TOPIC, settings.DEAD_LETTERS_TOPIC])
        await wait_for_broker(lambda: ensure_topics(
            settings.KAFKA_BROKER,
            [settings.TRANSACTIONS_TOPIC, settings.LABELS_TOPIC, settings.SCORES_TOPIC, settings.ANOMALIES_TOPIC,
             settings.DRIFT_ALERTS_TOPIC, settings.DEAD_LETTERS_TOPIC],
            settings.TOPIC_PARTITIONS, settings.TOPIC_REPLICAS,
        ))
        if settings.LEARNING_MODE == "central":  # the examples topic has one partition: the learner's order
            await wait_for_broker(lambda: ensure_topics(settings.KAFKA_BROKER, [settings.EXAMPLES_TOPIC], 1,
                                                        settings.TOPIC_REPLICAS))
        check_co_partitioned(await partition_counts(
            settings.KAFKA_BROKER, [settings.TRANSACTIONS_TOPIC, settings.LABELS_TOPIC, settings.SCORES_TOPIC]))
        await super().on_start()


async def wait_for_broker(attempt, wait_s: float | None = None) -> None:
    """Run ``attempt()`` (the worker's first call to the broker) until the broker answers, with
    exponential backoff, saying so; give up after ``BROKER_WAIT_S`` (a worker started while its
    broker restarts waits for it instead of exiting)."""
    import asyncio
    import logging
    import time

    from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError

    log = logging.getLogger(__name__)
    wait_s = settings.BROKER_WAIT_S if wait_s is None else wait_s
    deadline = time.monotonic() + wait_s
    delay = 0.5
    while True:
        try:
            return await attempt()
        except (KafkaConnectionError, KafkaTimeoutError, OSError) as exc:
            if time.monotonic() + delay > deadline:
                raise RuntimeError(f"Kafka at {settings.KAFKA_BROKER} not reachable after "
                                   f"{wait_s:.0f}s ({exc!r}); set FRAUD_KAFKA_BROKER or start it") from exc
            log.warning("Kafka at %s not reachable (%r); retrying in %.1fs", settings.KAFKA_BROKER, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def wait_for_registry() -> None:
    """Wait for the schema registry with exponential backoff, saying so; give up after REGISTRY_WAIT_S."""
    import asyncio
    import logging
    import time

    import httpx

    log = logging.getLogger(__name__)
    url = settings.SCHEMA_REGISTRY_URL.rstrip("/") + "/subjects"
    auth = (settings.SCHEMA_REGISTRY_USER, settings.SCHEMA_REGISTRY_PASSWORD) if settings.SCHEMA_REGISTRY_USER else None
    deadline = time.monotonic() + settings.REGISTRY_WAIT_S
    delay = 0.5
    async with httpx.AsyncClient(timeout=5.0, auth=auth) as client:
        while True:
            try:
                response = await client.get(url)
                if response.status_code < 500:
                    response.raise_for_status()
                    return
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPStatusError as exc:
                raise RuntimeError(f"schema registry at {settings.SCHEMA_REGISTRY_URL} refused us: {exc}") from exc
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if time.monotonic() + delay > deadline:
                raise RuntimeError(
                    f"schema registry at {settings.SCHEMA_REGISTRY_URL} not reachable after "
                    f"{settings.REGISTRY_WAIT_S:.0f}s ({problem}); set FRAUD_SCHEMA_REGISTRY_URL or start it")
            log.warning("schema registry at %s not reachable (%s); retrying in %.1fs",
                        settings.SCHEMA_REGISTRY_URL, problem, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


app = FraudApp(
    settings.APP_ID,
    broker=settings.KAFKA_BROKER,
    web_host=settings.WEB_HOST,
    web_port=settings.WEB_PORT,
    topic_partitions=settings.TOPIC_PARTITIONS,
    topic_replication_factor=settings.TOPIC_REPLICAS,
    producer_linger=settings.PRODUCER_LINGER_MS / 1000.0,
    broker_commit_interval=settings.BROKER_COMMIT_INTERVAL_S,
    broker_credentials=faust_credentials(settings),
    broker_session_timeout=settings.BROKER_SESSION_TIMEOUT_S,
    broker_heartbeat_interval=min(3.0, settings.BROKER_SESSION_TIMEOUT_S / 3),
    broker_max_poll_records=settings.BROKER_MAX_POLL_RECORDS or None,  # 0: no limit (Faust's default)
    consumer_max_fetch_size=settings.CONSUMER_MAX_FETCH_BYTES,
    stream_buffer_maxsize=max(4096, 4 * settings.BATCH_SIZE,
                              5 * (settings.TOPIC_PARTITIONS + 1) * settings.BROKER_MAX_POLL_RECORDS),
    **({"datadir": settings.DATA_DIR} if settings.DATA_DIR else {}),
    **builtin_pages_off(),  # Faust's table, router and statistics pages: unauthenticated state, off
)

tune(app, fetch_max_wait_ms=settings.CONSUMER_FETCH_MAX_WAIT_MS, fetch_min_bytes=settings.CONSUMER_FETCH_MIN_BYTES)

service = build(app, settings)
