"""Mends to faust-streaming 0.15.3 (with aiokafka 0.14.0), which the worker installs together.

* :mod:`~app.compat.faust.recovery`: after a table recovery, the stream partitions resume only once
  the agents' queues have been emptied, so that no message fetched meanwhile is thrown away;
* :mod:`~app.compat.faust.fetching`: the fetch loop moves back every partition whose fetched records
  it sets aside, and gives the consumer thread a frozen copy of the active partitions;
* :mod:`~app.compat.faust.fetch_tuning`: the worker's consumer fetches with the maximum wait and
  minimum size its app was given (:func:`~app.compat.faust.fetch_tuning.tune`) instead of Faust's
  fixed 1.5 s and aiokafka's 1 byte;
* :mod:`~app.compat.faust.draining`: the fetch loop hands a message to the streams in place, making
  tasks only for a hand-off that has to wait (Faust makes four for every message).

Each module names the versions it was written against and refuses any other with
:class:`UnsupportedVersion` (see :mod:`~app.compat.faust.patching`). :func:`install` checks all of
them before it patches anything, so a refusal leaves Faust as it ships; ``docs/upstream-faust.md``
describes each problem and fix for Faust's maintainers.
"""
from __future__ import annotations

from app.compat.faust import draining, fetch_tuning, fetching, recovery
from app.compat.faust.patching import UnsupportedVersion

__all__ = ["UnsupportedVersion", "install"]


def install() -> None:
    """Install the four mends (each once); raises :class:`UnsupportedVersion`, with nothing
    patched, if any of them was not written against the installed versions."""
    for mend in (recovery, fetching, fetch_tuning, draining):
        mend.check()
    recovery.install()
    fetching.install()
    fetch_tuning.install()
    draining.install()
