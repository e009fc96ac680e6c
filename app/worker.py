"""The Faust application: ``faust -A app worker``.

Topics, codecs and agents are wired here from :mod:`settings`; the agents themselves live in
:mod:`app.agents` and stay thin.
"""
from __future__ import annotations

import faust

import settings
from app import metrics

app = faust.App(
    settings.APP_ID,
    broker=settings.KAFKA_BROKER,
    web_host=settings.WEB_HOST,
    web_port=settings.WEB_PORT,
    topic_partitions=settings.TOPIC_PARTITIONS,
    topic_replication_factor=settings.TOPIC_REPLICAS,
    producer_linger=settings.PRODUCER_LINGER_MS / 1000.0,
    broker_commit_interval=settings.BROKER_COMMIT_INTERVAL_S,
    stream_buffer_maxsize=max(4096, 4 * settings.BATCH_SIZE),
    **({"datadir": settings.DATA_DIR} if settings.DATA_DIR else {}),
)


@app.page("/metrics")
async def prometheus_metrics(web, request):  # noqa: ANN001 - Faust view signature
    return web.bytes(metrics.render(), content_type="text/plain; version=0.0.4")


# Agents register themselves on import.
from app.agents import scoring  # noqa: E402,F401
