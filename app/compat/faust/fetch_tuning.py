"""How long the broker may hold a fetch of the worker's consumer, and for how many bytes.

The problem (faust-streaming 0.15.3 with aiokafka 0.14.0), one of waiting: aiokafka keeps one fetch
at a time in flight to a broker, and leaves out of it every partition whose fetched records have not
all been taken yet. When the agents are more than 0.1 s (aiokafka's prefetch backoff) behind on a
busy partition, the next fetch asks for the quiet partitions only (labels, the tables' changelogs),
and the broker holds it until data comes for them or the fetch's maximum wait is over. Faust sets
that wait to 1.5 s for the worker's consumer (``AIOKafkaConsumerThread._create_worker_consumer``)
and has no setting for it, so the busy partition was not fetched again for 1.5 s, again and again
while the worker was behind (seen: a p99 latency of 1.5-2.7 s at half the service's rate, the
worker and its model idle meanwhile). Faust has no setting for the fetch's minimum size either, and
aiokafka's 1 byte made every fetch at a steady few hundred transactions a second a round trip for
one or two of them.

The fix: after Faust has built the worker's aiokafka consumer, set its fetch wait and minimum size
(``_fetch_max_wait_ms`` and ``_fetch_min_bytes``, which its fetcher reads when it starts) to the
values :func:`tune` gave the app; a minimum below 1 byte is taken as 1, the least aiokafka accepts.
The values belong to the app (the worker passes its ``CONSUMER_FETCH_MAX_WAIT_MS`` and
``CONSUMER_FETCH_MIN_BYTES``); an app without them keeps Faust's own. :func:`install` patches on
faust-streaming 0.15.3 with aiokafka 0.14.0 only (:data:`FAUST_VERSIONS`, :data:`AIOKAFKA_VERSIONS`:
those two attributes are aiokafka's internals).

Upstream: no faust-streaming issue or pull request asks for these two settings. The fixed 1,500 ms
comes from robinhood/faust commit f6135cae (2018, "Simplify aiokafka getmany, increase fetcher
record size and wait time") and is unchanged on faust-streaming's master.

>>> FetchTuning.of(fetch_max_wait_ms=20, fetch_min_bytes=0)
FetchTuning(max_wait_ms=20, min_bytes=1)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from app.compat.faust.patching import patch_once, require

#: The faust-streaming versions whose worker consumer this module adjusts.
FAUST_VERSIONS = ("0.15.3",)
#: The aiokafka versions whose fetch attributes this module sets.
AIOKAFKA_VERSIONS = ("0.14.0",)

_PATCHED = "_fraud_fetch_tuned"


@dataclass(frozen=True)
class FetchTuning:
    """The broker's longest wait for a fetch (ms) and the fewest bytes that answer it."""

    max_wait_ms: int
    min_bytes: int

    @classmethod
    def of(cls, *, fetch_max_wait_ms: int, fetch_min_bytes: int) -> FetchTuning:
        """The tuning for these values, with a minimum of at least 1 byte."""
        return cls(int(fetch_max_wait_ms), max(1, int(fetch_min_bytes)))

    def apply(self, consumer: Any) -> Any:
        """Set an aiokafka consumer's fetch wait and minimum (before it starts); returns it."""
        consumer._fetch_max_wait_ms = self.max_wait_ms  # read by its fetcher on start
        consumer._fetch_min_bytes = self.min_bytes
        return consumer


_APP_ATTRIBUTE = "fetch_tuning"  # where tune() keeps an app's values


def tune(app: Any, *, fetch_max_wait_ms: int, fetch_min_bytes: int) -> FetchTuning:
    """Give ``app``'s worker consumer this fetch wait and minimum (read when the consumer is made,
    once :func:`install` has patched Faust); returns the values in force."""
    tuning = FetchTuning.of(fetch_max_wait_ms=fetch_max_wait_ms, fetch_min_bytes=fetch_min_bytes)
    setattr(app, _APP_ATTRIBUTE, tuning)
    return tuning


def create_worker_consumer(self: AIOKafkaConsumerThread, transport: Any) -> Any:
    """:meth:`AIOKafkaConsumerThread._create_worker_consumer` with the fetch wait and minimum the
    app was given (:func:`tune`) instead of Faust's fixed 1,500 ms and aiokafka's 1 byte."""
    consumer = _ORIGINAL_CREATE_WORKER_CONSUMER(self, transport)
    tuning = getattr(self.app, _APP_ATTRIBUTE, None)
    return tuning.apply(consumer) if tuning is not None else consumer


_ORIGINAL_CREATE_WORKER_CONSUMER = AIOKafkaConsumerThread._create_worker_consumer


def check() -> None:
    """Raise :class:`~app.compat.faust.patching.UnsupportedVersion` unless the installed
    faust-streaming and aiokafka are among :data:`FAUST_VERSIONS` and :data:`AIOKAFKA_VERSIONS`."""
    require("faust-streaming", FAUST_VERSIONS, mend=__name__)
    require("aiokafka", AIOKAFKA_VERSIONS, mend=__name__)


def install() -> type:
    """Make the worker's consumer fetch with its app's values (:func:`tune`), patching Faust's
    consumer thread once; returns the thread class. Checks the versions first (:func:`check`)."""
    check()
    return patch_once(AIOKafkaConsumerThread, _PATCHED,
                      {(AIOKafkaConsumerThread, "_create_worker_consumer"): create_worker_consumer},
                      "faust consumer thread: the worker's consumer fetches with its app's fetch wait and minimum")
