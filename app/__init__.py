"""Real-time card-fraud detection with online learning.

``app.app`` is the Faust application (``faust -A app worker``). It is imported lazily, so the
pure parts of the package (records, data, learning, windows) can be used without Faust starting.
"""
from typing import Any


def __getattr__(name: str) -> Any:
    if name == "app":
        from app.worker import app as faust_app

        return faust_app
    raise AttributeError(f"module 'app' has no attribute {name!r}")
