"""The fetch wait and minimum of the worker's consumer (app.compat.faust.fetch_tuning)."""
from __future__ import annotations

import asyncio

import pytest
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from app.compat.faust import fetch_tuning
from app.compat.faust.patching import UnsupportedVersion


def created_consumer(app) -> tuple:
    """The fetch wait, minimum and group of a consumer made as the worker makes its own."""
    async def create():
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        try:
            return consumer._fetch_max_wait_ms, consumer._fetch_min_bytes, consumer._group_id
        finally:
            await consumer.stop()
    return asyncio.run(create())


def test_the_worker_consumer_fetches_as_its_app_was_tuned(monkeypatch):
    from app.worker import app  # installs the mends, tunes the app with the settings' values

    monkeypatch.setattr(app, "fetch_tuning", app.fetch_tuning)  # the worker's values come back after
    fetch_tuning.tune(app, fetch_max_wait_ms=7, fetch_min_bytes=1234)
    assert created_consumer(app) == (7, 1234, app.conf.id)  # Faust's own setup is kept (its group)
    fetch_tuning.tune(app, fetch_max_wait_ms=7, fetch_min_bytes=0)
    assert created_consumer(app)[1] == 1  # the least aiokafka takes


def test_an_app_not_tuned_keeps_faust_s_fetch_wait(monkeypatch):
    from app.worker import app

    monkeypatch.delattr(app, "fetch_tuning")
    assert created_consumer(app)[0] == 1500  # Faust's fixed wait for the worker's consumer


def test_the_worker_installs_the_settings_values():
    import settings
    from app.worker import app

    assert created_consumer(app)[:2] == (settings.CONSUMER_FETCH_MAX_WAIT_MS, settings.CONSUMER_FETCH_MIN_BYTES)


@pytest.mark.parametrize("versions, refused", [
    ({"faust_streaming": "0.16.0"}, "faust-streaming 0.15.3, but faust-streaming 0.16.0 is installed"),
    ({"aiokafka": "0.15.0"}, "aiokafka 0.14.0, but aiokafka 0.15.0 is installed"),
], ids=["faust", "aiokafka"])
def test_install_refuses_another_faust_or_aiokafka_and_patches_nothing(installed, monkeypatch, versions, refused):
    installed(**versions)
    monkeypatch.delattr(AIOKafkaConsumerThread, fetch_tuning._PATCHED, raising=False)
    monkeypatch.setattr(AIOKafkaConsumerThread, "_create_worker_consumer", "faust's own")
    with pytest.raises(UnsupportedVersion, match=f"app.compat.faust.fetch_tuning was written against {refused}"):
        fetch_tuning.install()
    assert AIOKafkaConsumerThread._create_worker_consumer == "faust's own"
