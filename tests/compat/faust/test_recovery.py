"""The order in which streams resume after table recovery (app.compat.faust.recovery)."""
from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest
from faust.tables.recovery import Recovery

from app.compat.faust import recovery
from app.compat.faust.patching import UnsupportedVersion

STREAM = ("t.transactions", 0)
CHANGELOG = ("app-table-changelog", 0)


class Calls(list):
    def recorder(self, name, result=None):
        def record(*args):
            self.append((name, *args))
            return result
        return record


def fake_recovery(calls: Calls, assignment: set) -> SimpleNamespace:
    async def perform_seek():
        calls.append(("perform_seek",))
        await asyncio.sleep(0)  # the real seek awaits the consumer thread

    async def maybe_start():
        calls.append(("fetcher.maybe_start",))

    async def wait(coro, timeout=None):
        await coro

    consumer = SimpleNamespace(assignment=lambda: set(assignment), perform_seek=perform_seek,
                               resume_flow=calls.recorder("consumer.resume_flow"),
                               resume_partitions=calls.recorder("consumer.resume_partitions"))
    app = SimpleNamespace(consumer=consumer, conf=SimpleNamespace(broker_request_timeout=5.0),
                          flow_control=SimpleNamespace(resume=calls.recorder("flow_control.resume")),
                          _fetcher=SimpleNamespace(maybe_start=maybe_start))
    return SimpleNamespace(app=app, log=logging.getLogger("test"), completed=asyncio.Event(), _wait=wait,
                           _is_changelog_tp=lambda tp: tp == CHANGELOG)


def test_stream_partitions_resume_only_after_the_seek_and_the_queue_reset():
    calls = Calls()
    rec = fake_recovery(calls, {STREAM, CHANGELOG})
    asyncio.run(recovery.resume_stream_partitions(rec))
    names = [c[0] for c in calls]
    assert names == ["perform_seek", "flow_control.resume", "consumer.resume_flow",
                     "consumer.resume_partitions", "fetcher.maybe_start"]
    assert calls[3][1] == {STREAM}  # the changelog partitions are not resumed as streams
    assert rec.completed.is_set()


def test_empty_assignment_skips_the_seek():
    calls = Calls()
    asyncio.run(recovery.resume_stream_partitions(fake_recovery(calls, set())))
    assert [c[0] for c in calls] == ["flow_control.resume", "consumer.resume_flow",
                                     "consumer.resume_partitions", "fetcher.maybe_start"]


def test_install_patches_faust_recovery():
    assert recovery.install() is Recovery
    assert Recovery.on_recovery_completed is recovery.on_recovery_completed
    assert Recovery._resume_streams is recovery._resume_streams


def test_install_refuses_another_faust_and_patches_nothing(installed, monkeypatch):
    installed(faust_streaming="0.16.0")
    monkeypatch.delattr(Recovery, recovery._PATCHED, raising=False)
    monkeypatch.setattr(Recovery, "on_recovery_completed", "faust's own")
    with pytest.raises(UnsupportedVersion, match="app.compat.faust.recovery was written against "
                                                 "faust-streaming 0.15.3, but faust-streaming 0.16.0 is installed"):
        recovery.install()
    assert Recovery.on_recovery_completed == "faust's own"
