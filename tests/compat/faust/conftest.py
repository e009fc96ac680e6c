from __future__ import annotations

import importlib.metadata

import pytest


@pytest.fixture
def installed(monkeypatch):
    """``installed(**versions)`` makes :func:`importlib.metadata.version` report these versions (keys
    with ``_`` for ``-``: ``faust_streaming="0.16.0"``) for the rest of the test; others are real."""
    real = importlib.metadata.version

    def pretend(**versions: str) -> None:
        fake = {name.replace("_", "-"): version for name, version in versions.items()}
        monkeypatch.setattr(importlib.metadata, "version", lambda name: fake[name] if name in fake else real(name))
    return pretend
