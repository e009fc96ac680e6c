"""Stand-ins shared by the unit tests."""
from __future__ import annotations


class ChangelogTable:
    """What the changelog helpers (:mod:`app.state.changelog`) use of a Faust table: its data, and
    the (partition, key, value) of each changelog message sent, in order."""

    def __init__(self) -> None:
        self.data: dict = {}
        self.written: list[tuple] = []

    def send_changelog(self, partition, key, value, **kwargs) -> None:
        self.written.append((partition, key, value))
