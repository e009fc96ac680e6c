"""Replay rows to one test's topics (:func:`app.replay.replay` on its :class:`~app.testing.names.Names`),
in this thread or, with :class:`ReplayThread`, in the background while a test injects a fault."""
from __future__ import annotations

import asyncio
import threading
from typing import Any

from app.testing.names import Names
from app.testing.stack import BROKER, REGISTRY


def replay(names: Names, rows, broker: str | None = None, registry: str | None = None, **kwargs: Any) -> Any:
    """Send ``rows`` to the test's transactions and labels topics; the replay's stats. ``kwargs`` go
    to :func:`app.replay.replay` (its progress bar is off unless asked for)."""
    from app.replay import replay as _replay

    kwargs.setdefault("progress", False)
    return asyncio.run(_replay(
        rows, broker=broker or BROKER, registry_url=registry or REGISTRY, transactions_topic=names.transactions,
        labels_topic=names.labels, **kwargs,
    ))


class ReplayThread(threading.Thread):
    """:func:`replay` in a thread (the stream goes on while a fault is injected), keeping the ids
    sent; :meth:`result` waits for it and gives its stats or raises its error."""

    def __init__(self, names: Names, rows: list, **kwargs: Any):
        super().__init__(name="replay", daemon=True)
        self.names, self.rows, self.kwargs = names, rows, kwargs
        self.stats = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.stats = replay(self.names, self.rows, keep_ids=True, **self.kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised by result()
            self.error = exc

    def result(self, timeout_s: float = 120.0):
        self.join(timeout_s)
        if self.is_alive():
            raise TimeoutError("the replay did not finish")
        if self.error is not None:
            raise self.error
        return self.stats
