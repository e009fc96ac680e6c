"""Installing the faust-streaming mends together (app.compat.faust.install)."""
from __future__ import annotations

import pytest
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer as BaseConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer

from app.compat import faust as faust_mends
from app.compat.faust import draining, fetch_tuning, fetching, recovery


def test_install_patches_recovery_fetching_the_fetch_tuning_and_the_draining():
    faust_mends.install()
    assert Recovery.on_recovery_completed is recovery.on_recovery_completed
    assert Consumer.getmany is fetching.getmany
    assert AIOKafkaConsumerThread._create_worker_consumer is fetch_tuning.create_worker_consumer
    assert BaseConsumer._drain_messages is draining._drain_messages


def test_a_refusal_of_one_mend_installs_none(installed, monkeypatch):
    # aiokafka matters to the fetching mends only: the recovery mend, checked and installed first,
    # must not be installed alone
    installed(aiokafka="0.15.0")
    for cls, name, marker in [(Recovery, "on_recovery_completed", recovery._PATCHED),
                              (Consumer, "getmany", fetching._PATCHED),
                              (AIOKafkaConsumerThread, "_create_worker_consumer", fetch_tuning._PATCHED),
                              (BaseConsumer, "_drain_messages", draining._PATCHED)]:
        monkeypatch.delattr(cls, marker, raising=False)
        monkeypatch.setattr(cls, name, "faust's own")
    with pytest.raises(faust_mends.UnsupportedVersion, match="aiokafka 0.15.0 is installed"):
        faust_mends.install()
    assert Recovery.on_recovery_completed == Consumer.getmany == AIOKafkaConsumerThread._create_worker_consumer \
        == BaseConsumer._drain_messages == "faust's own"
